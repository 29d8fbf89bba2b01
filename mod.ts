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

// The application API. What tests, tools, simulators and other transports' authors need beyond it is in
// internal.ts (`@hamok/core/internal`), which carries no stability promise; see docs/decisions.md.

export {
  HamokAbortedError,
  HamokClosedError,
  HamokClusterConflictError,
  HamokCodecError,
  HamokConfigError,
  HamokConflictError,
  HamokDeliveryError,
  type HamokDeliveryFailure,
  HamokDuplicatePeerError,
  HamokError,
  type HamokErrorCode,
  type HamokErrorOptions,
  HamokListenerError,
  HamokNoLeaderError,
  HamokNotJoinedError,
  HamokNotLeaderError,
  HamokOutcomeUnknownError,
  HamokPayloadTooLargeError,
  HamokRateLimitedError,
  HamokRemoteError,
  HamokRemovedError,
  HamokStorageCorruptError,
  HamokStorageError,
  type HamokStorageErrorCode,
  HamokStorageFullError,
  HamokStorageLockedError,
  HamokStorageMismatchError,
  HamokTimeoutError,
  HamokTransportError,
} from "./src/errors.ts";
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
} from "./src/config.ts";
export type { ClusterKey } from "./src/codec/wire_auth.ts";
export type { Scheduler, TimerHandle } from "./src/cluster/scheduler.ts";
export type { HamokMemberStatus, HamokStatus } from "./src/cluster/status.ts";
export type { DropReason, PeerCounterValues } from "./src/cluster/peer_counters.ts";
export type { SnapshotReceiveStats } from "./src/raft/raft_node.ts";
export type { PayloadCodec } from "./src/codec/payload_codec.ts";
export type { ValueCodec } from "./src/codec/value_codec.ts";
export {
  HamokEmitter,
  type HamokEmitterConfig,
  type HamokEmitterConnection,
  type HamokEmitterEventMap,
  type HamokEmitterListener,
} from "./src/collections/emitter.ts";
export type {
  HamokEmitterSnapshot,
  HamokEmitterSnapshotEntry,
  HamokSubscriptionTable,
  HamokSubscriptionTableEvents,
} from "./src/collections/subscription_table.ts";
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
} from "./src/collections/map.ts";
export type { Encoded } from "./src/collections/map_state.ts";
export {
  HamokRecord,
  type HamokRecordConfig,
  type HamokRecordEvents,
  type HamokRecordField,
  type HamokRecordInsertEvent,
  type HamokRecordPartial,
  type HamokRecordRemoveEvent,
  type HamokRecordSnapshot,
  type HamokRecordUpdateEvent,
} from "./src/collections/record.ts";
export {
  HamokQueue,
  type HamokQueueConfig,
  type HamokQueueEvents,
  type HamokQueueWriteOptions,
} from "./src/collections/queue.ts";
export type { HamokQueueSnapshot } from "./src/collections/queue_state.ts";
export {
  HamokRemoteMap,
  type HamokRemoteMapConfig,
  type HamokRemoteMapEvents,
  type HamokRemoteMapReadOptions,
  type HamokRemoteMapSnapshot,
  type HamokRemoteMapWriteOptions,
} from "./src/collections/remote_map.ts";
export {
  type HamokRemoteStore,
  type HamokRemoteStoreBatch,
  type HamokRemoteStoreMark,
  type HamokRemoteStoreOp,
  MemoryRemoteStore,
  type MemoryRemoteStoreOptions,
} from "./src/collections/remote_store.ts";
export type {
  Transport,
  TransportEvents,
  TransportHandler,
  TransportHeaders,
  TransportMessage,
  TransportState,
  TransportSubscription,
} from "./src/transport/transport.ts";
export { MemoryBus, type MemoryBusOptions, type MemoryBusScheduler } from "./src/transport/memory_bus.ts";
export { MemoryTransport, type MemoryTransportOptions } from "./src/transport/memory_transport.ts";
export {
  NATS_TRANSPORT_DEFAULTS,
  NatsTransport,
  type NatsTransportConnectOptions,
  type NatsTransportOptions,
} from "./src/transport/nats_transport.ts";
export type { RaftPersistentState, RaftStorage } from "./src/storage/raft_storage.ts";
export type {
  Entry,
  EntryType,
  HardState,
  Membership,
  MembershipChange,
  Snapshot,
  SnapshotMeta,
} from "./src/raft/types.ts";
export { MemoryRaftStorage, type MemoryRaftStorageOptions } from "./src/storage/memory_storage.ts";
export {
  FileRaftStorage,
  type FileRaftStorageOptions,
  type FileSyncPolicy,
} from "./src/storage/file_raft_storage.ts";
export type { StorageFs } from "./src/storage/storage_fs.ts";
export {
  HAMOK_CLIENT_DEFAULT_TIMEOUT_MS,
  HamokClient,
  type HamokClientEvent,
  type HamokClientMapChange,
  type HamokClientMapEntry,
  type HamokClientOptions,
  type HamokClientWatchGap,
  type HamokClientWatchOptions,
  type HamokClientWriteOptions,
} from "./src/cli/client.ts";
export {
  consoleLogger,
  type ConsoleLoggerOptions,
  type HamokLogLevel,
} from "./src/telemetry/console_logger.ts";
export { HAMOK_METRIC_NAMES } from "./src/telemetry/metrics.ts";
export { HAMOK_SPAN_ATTRIBUTES } from "./src/telemetry/messaging_spans.ts";
export { HAMOK_VERSION } from "./src/version.ts";
