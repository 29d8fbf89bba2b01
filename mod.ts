/**
 * Hamok: replicated state and distributed events for the instances of a service, kept in
 * agreement by the Raft consensus algorithm and carried over NATS (or an in-process bus).
 *
 * Every instance runs a {@linkcode Hamok} peer; the peers form one cluster and agree on one
 * replicated log, on which sit the collections: {@linkcode HamokEmitter} (distributed events),
 * {@linkcode HamokMap}, {@linkcode HamokRecord}, {@linkcode HamokQueue} and
 * {@linkcode HamokRemoteMap}. Runs on Deno, Bun and Node 20+.
 *
 * @example Quick start: one peer on the in-process transport
 * ```ts
 * import { Hamok } from "@hamok/core";
 *
 * type Events = { greet: [name: string] };
 *
 * const hamok = new Hamok(); // the in-process transport; pass a NatsTransport to span processes
 * await hamok.join(); // finds the cluster, or bootstraps one
 *
 * const emitter = hamok.createEmitter<Events>({ emitterId: "greetings" });
 * await emitter.subscribe("greet", (name) => console.log(`hello ${name}`));
 * const delivered: string[] = await emitter.publish("greet", "world"); // peers whose listeners got it
 *
 * const stock = hamok.createMap<string, number>({ mapId: "stock" });
 * await stock.set("apples", 10); // resolves once committed and applied here
 * console.log(stock.get("apples"), delivered.length); // 10 1
 * hamok.close();
 * ```
 *
 * @example Across processes: every peer on NATS with the same cluster id
 * ```ts
 * import { Hamok, NatsTransport } from "@hamok/core";
 *
 * const transport = await NatsTransport.connect({ servers: "nats://127.0.0.1:4222" });
 * const hamok = new Hamok({ peerId: "orders-1", clusterId: "orders", transport });
 * await hamok.join();
 * await hamok.waitUntilLeader();
 * hamok.close();
 * await transport.close(); // a transport you pass is yours to close
 * ```
 *
 * @module
 */

export * from "./src/errors.ts";
export * from "./src/codec/envelope.ts";
export * from "./src/codec/payload_codec.ts";
export * from "./src/codec/value_codec.ts";
export * from "./src/codec/decode_failure_counter.ts";
export * from "./src/codec/safe_decode_envelope.ts";
export type {
  Transport,
  TransportEvents,
  TransportHandler,
  TransportHeaders,
  TransportMessage,
  TransportState,
  TransportSubscription,
} from "./src/transport/transport.ts";
export {
  FileRaftStorage,
  type FileRaftStorageOptions,
  type FileSyncPolicy,
} from "./src/storage/file_raft_storage.ts";
export type { StorageFs } from "./src/storage/storage_fs.ts";
export { MemoryBus } from "./src/transport/memory_bus.ts";
export type {
  MemoryBusOptions,
  MemoryBusScheduler,
  MemoryDelayOptions,
  MemoryDuplicateOptions,
  MemoryEndpointRef,
  MemoryEndpoints,
  MemoryFault,
  MemoryFaultKind,
  MemoryFaultOptions,
} from "./src/transport/memory_bus.ts";
export { MemoryTransport, type MemoryTransportOptions } from "./src/transport/memory_transport.ts";
export {
  NATS_TRANSPORT_DEFAULTS,
  NatsTransport,
  type NatsTransportConnectOptions,
  type NatsTransportOptions,
} from "./src/transport/nats_transport.ts";
export {
  Hamok,
  type HamokEvents,
  type HamokExportOptions,
  type HamokJoinOptions,
  type HamokSnapshot,
  type HamokState,
} from "./src/hamok.ts";
export {
  HAMOK_DEFAULTS,
  type HamokConfig,
  type HamokLogger,
  type HamokTestingBug,
  type ResolvedHamokConfig,
  resolveHamokConfig,
} from "./src/config.ts";
export { REAL_SCHEDULER, type Scheduler, type TimerHandle } from "./src/cluster/scheduler.ts";
export {
  EMITTER_KIND,
  HamokEmitter,
  type HamokEmitterConfig,
  type HamokEmitterConnection,
  type HamokEmitterEventMap,
  type HamokEmitterListener,
} from "./src/collections/emitter.ts";
export {
  type HamokEmitterSnapshot,
  type HamokEmitterSnapshotEntry,
  HamokSubscriptionTable,
  type HamokSubscriptionTableEvents,
} from "./src/collections/subscription_table.ts";
export type { IsolatedEventEmitter } from "./src/collections/isolated_emitter.ts";
export {
  HamokQueue,
  type HamokQueueConfig,
  type HamokQueueEvents,
  type HamokQueueWriteOptions,
} from "./src/collections/queue.ts";
export {
  type HamokQueueSnapshot,
  HamokQueueState,
  type HamokQueueStateEvents,
  QUEUE_KIND,
} from "./src/collections/queue_state.ts";
export {
  HamokRemoteMap,
  type HamokRemoteMapConfig,
  type HamokRemoteMapEvents,
  type HamokRemoteMapReadOptions,
  type HamokRemoteMapSnapshot,
  type HamokRemoteMapWriteOptions,
} from "./src/collections/remote_map.ts";
export {
  HamokRemoteMapState,
  type HamokRemoteMapStateEvents,
  type PendingRemoteOp,
  REMOTE_MAP_KIND,
  type RemoteMapOp,
} from "./src/collections/remote_map_state.ts";
export {
  type HamokRemoteStore,
  type HamokRemoteStoreBatch,
  type HamokRemoteStoreMark,
  type HamokRemoteStoreOp,
  MemoryRemoteStore,
  type MemoryRemoteStoreOptions,
} from "./src/collections/remote_store.ts";
export {
  type HamokCasWriteOptions,
  type HamokLinearizableReadOptions,
  type HamokLocalReadOptions,
  HamokMap,
  type HamokMapConfig,
  type HamokMapEntry,
  type HamokMapEvents,
  type HamokMapSnapshot,
  type HamokReadOptions,
  type HamokWriteOptions,
  MAP_KIND,
} from "./src/collections/map.ts";
export {
  HamokRecord,
  type HamokRecordConfig,
  type HamokRecordEvents,
  type HamokRecordField,
  type HamokRecordInsertEvent,
  type HamokRecordRemoveEvent,
  type HamokRecordSnapshot,
  type HamokRecordUpdateEvent,
  RECORD_KIND,
} from "./src/collections/record.ts";
export { ClusterSubjects, encodeSubjectToken } from "./src/cluster/subjects.ts";
export { HamokRemoteError } from "./src/cluster/rpc.ts";
export {
  DROP_REASONS,
  type DropReason,
  PeerCounters,
  type PeerCounterValues,
} from "./src/cluster/peer_counters.ts";
export type { HamokMemberStatus, HamokStatus } from "./src/cluster/status.ts";
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
export {
  HamokClient,
  type HamokClientEvent,
  type HamokClientMapChange,
  type HamokClientMapEntry,
  type HamokClientOptions,
} from "./src/cli/client.ts";
export type { RaftPersistentState, RaftStorage } from "./src/storage/raft_storage.ts";
export { MemoryRaftStorage } from "./src/storage/memory_storage.ts";
export type * from "./src/raft/types.ts";
export { spanContextFromHeaders, traceHeaders } from "./src/telemetry/trace_context.ts";
export { HAMOK_SPAN_ATTRIBUTES } from "./src/telemetry/messaging_spans.ts";
export {
  HAMOK_METRIC_NAMES,
  HamokMetrics,
  type HamokMetricsSource,
  PublishAttributes,
} from "./src/telemetry/metrics.ts";
export {
  consoleLogger,
  type ConsoleLoggerOptions,
  type HamokLogLevel,
} from "./src/telemetry/console_logger.ts";
export type { AckHandler, CollectionHost, ProposeOptions } from "./src/collections/collection_host.ts";
export type {
  ApplyContext,
  Command,
  ReplicatedState,
  ReplicatedStateFactory,
  StateMachineImage,
} from "./src/cluster/state_machine.ts";
