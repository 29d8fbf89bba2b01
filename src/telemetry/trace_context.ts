/**
 * W3C trace context (`traceparent` / `tracestate`) written into and read from transport headers.
 * Hamok formats the headers itself, so trace context travels with every traced message whatever
 * propagator (if any) the application registered.
 *
 * @module
 */

import { createTraceState, isSpanContextValid, type SpanContext, TraceFlags } from "@opentelemetry/api";
import type { TransportHeaders } from "../transport/transport.ts";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The `traceparent` (and `tracestate`, when present) headers of a span context, or `undefined` for
 * an invalid (non-recording, no-SDK) context.
 *
 * @example
 * ```ts
 * import { traceHeaders } from "@hamok/core/internal";
 * traceHeaders({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 });
 * // { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }
 * ```
 */
export function traceHeaders(spanContext: SpanContext): TransportHeaders | undefined {
  if (!isSpanContextValid(spanContext)) return undefined;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, "0");
  const traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * The remote span context carried by `traceparent` / `tracestate` headers, or `undefined` if
 * there is none or it is malformed.
 *
 * @example
 * ```ts
 * import { spanContextFromHeaders } from "@hamok/core/internal";
 * const ctx = spanContextFromHeaders({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
 * console.log(ctx?.isRemote); // true
 * ```
 */
export function spanContextFromHeaders(headers: TransportHeaders | undefined): SpanContext | undefined {
  const traceparent = headers?.traceparent;
  if (traceparent === undefined) return undefined;
  const match = TRACEPARENT.exec(traceparent.trim().toLowerCase());
  if (match === null) return undefined;
  const [, traceId, spanId, flags] = match;
  if (traceId === undefined || spanId === undefined || flags === undefined) return undefined;
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (!isSpanContextValid(spanContext)) return undefined;
  const tracestate = headers?.tracestate;
  if (tracestate !== undefined && tracestate.length > 0) {
    return { ...spanContext, traceState: createTraceState(tracestate) };
  }
  return spanContext;
}
