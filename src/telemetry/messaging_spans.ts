/**
 * Spans of emitter traffic, after the OpenTelemetry messaging semantic conventions: a PRODUCER
 * span `send <emitterId>` per publish or notify, and a CONSUMER span `process <emitterId>` per
 * delivery on each subscriber, whose parent is the producer span (the context travels as W3C headers).
 *
 * @module
 */

import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { TransportHeaders } from "../transport/transport.ts";
import { spanContextFromHeaders } from "./trace_context.ts";

/** Attribute names used on Hamok spans. */
export const HAMOK_SPAN_ATTRIBUTES: {
  readonly system: "messaging.system";
  readonly operationType: "messaging.operation.type";
  readonly operationName: "messaging.operation.name";
  readonly destination: "messaging.destination.name";
  readonly messageId: "messaging.message.id";
  readonly event: "hamok.event";
  readonly peerId: "hamok.peer.id";
  readonly sourcePeerId: "hamok.source.peer.id";
  readonly targetPeers: "hamok.target_peers";
} = {
  system: "messaging.system",
  operationType: "messaging.operation.type",
  operationName: "messaging.operation.name",
  destination: "messaging.destination.name",
  messageId: "messaging.message.id",
  event: "hamok.event",
  peerId: "hamok.peer.id",
  sourcePeerId: "hamok.source.peer.id",
  targetPeers: "hamok.target_peers",
};

const A = HAMOK_SPAN_ATTRIBUTES;
/** Span options, shared by every span of their kind (a publish allocates none). */
const SEND_OPTIONS = { kind: SpanKind.PRODUCER };
const PROCESS_OPTIONS = { kind: SpanKind.CONSUMER };

/**
 * Starts and finishes the spans of one emitter.
 *
 * @example
 * ```ts ignore
 * const spans = new MessagingSpans(tracer, "chat", "peer-1");
 * const span = spans.startSend("publish", "message", 2);
 * span.end();
 * ```
 */
export class MessagingSpans {
  readonly #tracer: Tracer;
  readonly #sendName: string;
  readonly #processName: string;
  readonly #emitterId: string;
  readonly #peerId: string;

  /** Creates the span helper of one emitter on one peer. */
  constructor(tracer: Tracer, emitterId: string, peerId: string) {
    this.#tracer = tracer;
    this.#emitterId = emitterId;
    this.#peerId = peerId;
    this.#sendName = `send ${emitterId}`;
    this.#processName = `process ${emitterId}`;
  }

  /**
   * Starts the PRODUCER span of a publish or notify (a child of the active span, if any).
   * Attributes are only built when the span records, so tracing without an SDK costs next to nothing.
   */
  startSend(operation: "publish" | "notify", event: string, targetPeers: number, messageId?: string): Span {
    const span = this.#tracer.startSpan(this.#sendName, SEND_OPTIONS);
    if (span.isRecording()) {
      const attributes: Attributes = {
        [A.system]: "hamok",
        [A.operationType]: "send",
        [A.operationName]: operation,
        [A.destination]: this.#emitterId,
        [A.event]: event,
        [A.peerId]: this.#peerId,
        [A.targetPeers]: targetPeers,
      };
      if (messageId !== undefined) attributes[A.messageId] = messageId;
      span.setAttributes(attributes);
    }
    return span;
  }

  /** Starts the CONSUMER span of one delivery, parented by the producer context in `headers`. */
  startProcess(event: string, sourcePeerId: string, headers: TransportHeaders | undefined): Span {
    const remote = spanContextFromHeaders(headers);
    const parent = remote === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, remote);
    const span = this.#tracer.startSpan(this.#processName, PROCESS_OPTIONS, parent);
    if (span.isRecording()) {
      span.setAttributes({
        [A.system]: "hamok",
        [A.operationType]: "process",
        [A.destination]: this.#emitterId,
        [A.event]: event,
        [A.peerId]: this.#peerId,
        [A.sourcePeerId]: sourcePeerId,
      });
    }
    return span;
  }
}

/** Marks `span` failed with `error` and ends it. */
export function failSpan(span: Span, error: Error): void {
  if (span.isRecording()) {
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  }
  span.end();
}
