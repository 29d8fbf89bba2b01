/**
 * `@hamok/core/internal`: the parts of Hamok that its own tests, tools and simulators use, and that
 * the author of a transport, a storage or a wire-level tool may need, beyond the application API of
 * `@hamok/core` (`mod.ts`).
 *
 * **No stability promise.** Everything here may change or disappear in any release, minor and patch
 * releases included, without a deprecation period: the wire envelope and its codecs, the Raft core
 * ({@linkcode RaftNode} and its types), the replicated states behind the collections, the collection
 * host, the memory bus's fault injection, the client protocol's op names and the telemetry plumbing.
 * An application should import from `@hamok/core` only; a name it needs from here is a gap in the
 * application API worth reporting.
 *
 * @example Encoding and decoding one wire envelope
 * ```ts
 * import { decodeEnvelope, encodeEnvelope, type WireEnvelope } from "@hamok/core/internal";
 *
 * const envelope: WireEnvelope = {
 *   type: "event",
 *   from: "p1",
 *   body: { emitterId: "chat", event: "message", payload: new Uint8Array([1]), seq: 1 },
 * };
 * const back = decodeEnvelope(encodeEnvelope(envelope));
 * console.log(back.type, back.from); // event p1
 * ```
 *
 * @example Driving the Raft core by hand (what the simulator does)
 * ```ts
 * import { RaftNode } from "@hamok/core/internal";
 *
 * const node = new RaftNode({ id: "a", random: () => 0.5 }, {
 *   hardState: { term: 0, vote: undefined, commit: 0 },
 *   snapshot: {
 *     meta: { index: 0, term: 0, membership: { voters: ["a"], learners: [], removed: [] } },
 *     data: new Uint8Array(),
 *   },
 *   entries: [],
 * });
 * node.campaign(); // a single voter elects itself at once
 * console.log(node.role, node.hasReady()); // leader true
 * ```
 *
 * @module
 */

// The wire envelope (every message on the transport) and its bodies.
export * from "./src/codec/envelope.ts";
// The CBOR codecs behind the collections' defaults, and the helpers that wrap a codec's errors.
export {
  CborPayloadCodec,
  cborPayloadCodec,
  decodePayload,
  encodePayload,
} from "./src/codec/payload_codec.ts";
export { CborValueCodec, cborValueCodec, decodeValue, encodeValue } from "./src/codec/value_codec.ts";
// The Raft core: the node, its configuration and message types (some of which, the storage
// types, are public in mod.ts too).
export { RaftNode } from "./src/raft/raft_node.ts";
export { RaftError } from "./src/raft/raft_error.ts";
export type * from "./src/raft/types.ts";
// Configuration resolution and the real scheduler (the default of HamokConfig.scheduler).
export { resolveHamokConfig } from "./src/config.ts";
export { REAL_SCHEDULER } from "./src/cluster/scheduler.ts";
// The memory bus's fault injection (MemoryBus itself is public).
export type {
  MemoryDelayOptions,
  MemoryDuplicateOptions,
  MemoryEndpointRef,
  MemoryEndpoints,
  MemoryFault,
  MemoryFaultKind,
  MemoryFaultOptions,
} from "./src/transport/memory_bus.ts";
// Wire errors: the one table from a code back to its class, and the way there.
export { errorFromWire, errorToWire, type HamokWireError, isHamokErrorCode } from "./src/errors.ts";
// Cluster plumbing: subjects, drop counters, the client protocol's ops and limits.
export { ClusterSubjects, encodeSubjectToken } from "./src/cluster/subjects.ts";
export { DROP_REASONS, PeerCounters } from "./src/cluster/peer_counters.ts";
export {
  CLIENT_LIMITS,
  CLIENT_MAP_READ_OP,
  CLIENT_MAP_WRITE_OP,
  CLIENT_OPS,
  CLIENT_PUBLISH_OP,
  CLIENT_STATUS_OP,
  CLIENT_UNWATCH_OP,
  CLIENT_WATCH_OP,
} from "./src/cluster/client_ops.ts";
// The replicated states behind the collections, their kinds, and the host the collections use.
export { EMITTER_KIND } from "./src/collections/emitter.ts";
export { HamokSubscriptionTable } from "./src/collections/subscription_table.ts";
export { MAP_KIND } from "./src/collections/map.ts";
export { RECORD_KIND } from "./src/collections/record.ts";
export { HamokQueueState, type HamokQueueStateObserver, QUEUE_KIND } from "./src/collections/queue_state.ts";
export {
  HamokRemoteMapState,
  type HamokRemoteMapStateObserver,
  type PendingRemoteOp,
  REMOTE_MAP_KIND,
  type RemoteMapOp,
  type RemoteOpFailure,
} from "./src/collections/remote_map_state.ts";
export type { AckHandler, CollectionHost, ProposeOptions } from "./src/collections/collection_host.ts";
export type {
  ApplyContext,
  Command,
  ReplicatedState,
  ReplicatedStateFactory,
  StateMachineImage,
} from "./src/cluster/state_machine.ts";
// Telemetry plumbing: trace-context headers and the metric instruments.
export { spanContextFromHeaders, traceHeaders } from "./src/telemetry/trace_context.ts";
export { HamokMetrics, type HamokMetricsSource, PublishAttributes } from "./src/telemetry/metrics.ts";
