/**
 * The registry of collection kinds. Each kind (emitter, map, record, queue, remote map) declares
 * here, once, its replicated-state factory, how its view is made from a config, and how its states
 * go into and come out of a {@linkcode HamokSnapshot}. The peer registers the state factories, the
 * facade's create/getOrCreate methods make views through {@linkcode createView}, and
 * export/import walk the kinds instead of switching on them.
 *
 * @module
 */

import type { CollectionHost } from "./collection_host.ts";
import type { ReplicatedState } from "../cluster/state_machine.ts";
import { assertWellFormed } from "../codec/well_formed.ts";
import { HamokConfigError, HamokListenerError, HamokPayloadTooLargeError } from "../errors.ts";
import { encodeCbor } from "../codec/cbor.ts";
import { EMITTER_KIND, HamokEmitter, type HamokEmitterConfig } from "./emitter.ts";
import {
  checkSubscriptionsImage,
  type HamokEmitterSnapshot,
  HamokSubscriptionTable,
  type TableImage,
} from "./subscription_table.ts";
import { checkQueueItem, HamokQueue, type HamokQueueConfig } from "./queue.ts";
import { type HamokQueueSnapshot, HamokQueueState, QUEUE_KIND } from "./queue_state.ts";
import { HamokRemoteMap, type HamokRemoteMapConfig, type RemoteMapLeadership } from "./remote_map.ts";
import { HamokRemoteMapState, REMOTE_MAP_KIND } from "./remote_map_state.ts";
import {
  HamokMap,
  type HamokMapConfig,
  type HamokMapSnapshot,
  MAP_KIND,
  mapSnapshotOf,
  mapSnapshotParts,
} from "./map.ts";
import { HamokMapState } from "./map_state.ts";
import { checkEntries, checkPairSizes, commandRoom, proposeEntries } from "./map_base.ts";
import {
  HamokRecord,
  type HamokRecordConfig,
  type HamokRecordSnapshot,
  RECORD_KIND,
  recordSnapshotOf,
  recordSnapshotParts,
} from "./record.ts";

/**
 * Options of `Hamok.exportParts`.
 *
 * @example
 * ```ts
 * import { Hamok } from "@hamok/core";
 * const hamok = new Hamok();
 * await hamok.join();
 * for await (const part of hamok.exportParts({ maxEntriesPerPart: 1000 })) console.log(part.appliedIndex);
 * hamok.close();
 * ```
 */
export interface HamokExportOptions {
  /** Most map entries or record fields in one part. Default 10000. */
  maxEntriesPerPart?: number;
}

/**
 * What `Hamok.export` made: the replicated state of a peer's collections.
 *
 * `Hamok.import` checks every part of a snapshot as a write checks it, before it proposes anything:
 * a snapshot that fails a check rejects and imports nothing. `HamokConfigError` for a malformed
 * shape (not version 1; a field that is not an array; an image that is not an object; an id that is
 * not a non-empty well-formed string; map or record `keys` and `values` that are not arrays of the
 * same length of strings and `Uint8Array`s, record keys that are not strings; emitter
 * `subscriptions` that are not arrays of `{ event, subscribers: { peerId, metadata }[] }` with
 * non-empty well-formed event names and peer ids; a queue without an `items` array, or an
 * `undefined` item); `HamokCodecError` for a map or record key or value string, or a string
 * anywhere in a queue item or in subscriber metadata, with a lone UTF-16 surrogate (UTF-8 would carry
 * it as U+FFFD), and for a queue item or metadata the default codec cannot carry (a function, a
 * `WeakMap`, a `Promise`, a cycle..., as `queue.push` refuses). The collections' codecs are not
 * applied (the peer may have no view of them): `map.import`, `record.import` and `queue.import` also
 * decode every entry with the view's codecs.
 *
 * @example
 * ```ts
 * import { Hamok, type HamokSnapshot } from "@hamok/core";
 * const hamok = new Hamok();
 * await hamok.join();
 * const snapshot: HamokSnapshot = hamok.export();
 * console.log(snapshot.version, snapshot.emitters.length); // 1 0
 * hamok.close();
 * ```
 */
export interface HamokSnapshot {
  /** Format version. */
  readonly version: 1;
  /** Peer that made the export. */
  readonly peerId: string;
  /** Log index the export reflects. */
  readonly appliedIndex: number;
  /** The emitters' subscription tables. */
  readonly emitters: readonly HamokEmitterSnapshot[];
  /** The queues (remote maps are not included: their data lives in the application's store). */
  readonly queues?: readonly HamokQueueSnapshot[];
  /** The maps. */
  readonly maps?: readonly HamokMapSnapshot[];
  /** The records. */
  readonly records?: readonly HamokRecordSnapshot[];
}

/** The field of a {@linkcode HamokSnapshot} a kind's states go in. */
type SnapshotField = "emitters" | "queues" | "maps" | "records";

/** What a view is made with: the collection host, and the peer's leadership (for the remote map). */
export interface ViewContext {
  /** The host the view talks to. */
  readonly host: CollectionHost;
  /** Whether this peer leads, and when that changes. */
  readonly leadership: RemoteMapLeadership;
}

/** Proposes a checked image through consensus (see {@linkcode KindSnapshot.check}). */
type ImageImport = (host: CollectionHost, timeoutMs: number) => Promise<void>;

/** How a kind's states go into and come out of a snapshot. */
interface KindSnapshot {
  /** The field of {@linkcode HamokSnapshot} the kind's images go in. */
  readonly field: SnapshotField;
  /** The image of one state. */
  of(state: ReplicatedState): unknown;
  /** The image of one state in parts of at most `max` entries (kinds exported in parts only). */
  parts?(state: ReplicatedState, max: number): Iterator<unknown>;
  /**
   * Checks one image (the `index`th of its field) as a write checks what it proposes, proposing
   * nothing: `HamokConfigError` for a malformed shape, `HamokCodecError` for what the replicated form
   * cannot carry, `HamokPayloadTooLargeError` for what could not go in entries of `host`.
   * Returns what imports the image through consensus (with copies of its lists, so changing the
   * snapshot afterwards changes nothing).
   */
  check(image: unknown, index: number, host: CollectionHost): ImageImport;
}

/** `image` as an object of fields, or a `HamokConfigError` naming the `index`th image of `field`. */
function imageFields(image: unknown, field: SnapshotField, index: number): Record<string, unknown> {
  if (image === null || typeof image !== "object" || Array.isArray(image)) {
    throw new HamokConfigError(`snapshot ${field}[${index}] is not an object`);
  }
  return image as Record<string, unknown>;
}

/** `value` if it is a non-empty well-formed string, else a `HamokConfigError` naming it `what`. */
function imageString(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new HamokConfigError(`${what} must be a non-empty string`);
  }
  assertWellFormed(what, value, HamokConfigError);
  return value;
}

/** The subscription table of an emitter image as the `import` command takes it, checked. */
function checkEmitterImage(image: unknown, index: number): { id: string; entries: TableImage } {
  const fields = imageFields(image, "emitters", index);
  const id = imageString(fields.emitterId, `the emitterId of snapshot emitters[${index}]`);
  return { id, entries: checkSubscriptionsImage(id, fields.subscriptions) };
}

/**
 * One kind of collection, declared once.
 *
 * @example
 * ```ts ignore
 * const view = createView(peer, context, MAP, { mapId: "stock" });
 * ```
 */
export interface CollectionKind<Config, View extends { closeByHost(): void }> {
  /** The kind's name in commands and state keys. */
  readonly kind: string;
  /** The collection id a view config names (not yet validated). */
  idOf(config: Config): unknown;
  /** An empty replicated state of collection `id`. */
  state(id: string, host: CollectionHost): ReplicatedState;
  /** A view over the replicated state. */
  view(context: ViewContext, config: Config): View;
  /** Export and import (absent: the kind is not exported). */
  readonly snapshot?: KindSnapshot;
}

/** The emitter: its state is the subscription table. */
export const EMITTER: CollectionKind<HamokEmitterConfig, HamokEmitter> = {
  kind: EMITTER_KIND,
  idOf: (config) => config?.emitterId,
  state: (id, host) =>
    new HamokSubscriptionTable(id, (error, event) =>
      host.reportError(
        new HamokListenerError(
          `a listener of the subscription table of emitter '${id}' threw on '${event}'`,
          { collectionId: id, event },
          { cause: error },
        ),
      )),
  view: (context, config) => new HamokEmitter(context.host, config),
  snapshot: {
    field: "emitters",
    of: (state) => (state as HamokSubscriptionTable).toSnapshot(),
    check: (image, index) => {
      const { id, entries } = checkEmitterImage(image, index);
      return async (host, timeoutMs) => {
        await host.propose(EMITTER_KIND, id, "import", { entries }, { timeoutMs });
      };
    },
  },
};

/** The replicated map. */
export const MAP: CollectionKind<HamokMapConfig<unknown, unknown>, HamokMap> = {
  kind: MAP_KIND,
  idOf: (config) => config?.mapId,
  state: (id) => new HamokMapState(id),
  view: (context, config) => new HamokMap(context.host, config),
  snapshot: {
    field: "maps",
    of: (state) => mapSnapshotOf(state as HamokMapState),
    parts: (state, max) => mapSnapshotParts(state as HamokMapState, max),
    check: (image, index, host) => {
      const map = imageFields(image, "maps", index);
      const id = imageString(map.mapId, `the mapId of snapshot maps[${index}]`);
      const pairs = checkEntries(MAP_KIND, id, map.keys, map.values);
      checkPairSizes(MAP_KIND, id, pairs, host.maxEntryBytes, commandRoom(host, MAP_KIND, id));
      return (host, timeoutMs) => proposeEntries(host, MAP_KIND, id, pairs, timeoutMs);
    },
  },
};

/** The replicated record: a map state whose keys are the field names. */
export const RECORD: CollectionKind<HamokRecordConfig<Record<string, unknown>>, HamokRecord> = {
  kind: RECORD_KIND,
  idOf: (config) => config?.recordId,
  state: (id) => new HamokMapState(id),
  view: (context, config) => new HamokRecord(context.host, config),
  snapshot: {
    field: "records",
    of: (state) => recordSnapshotOf(state as HamokMapState),
    parts: (state, max) => recordSnapshotParts(state as HamokMapState, max),
    check: (image, index, host) => {
      const record = imageFields(image, "records", index);
      const id = imageString(record.recordId, `the recordId of snapshot records[${index}]`);
      const pairs = checkEntries(RECORD_KIND, id, record.keys, record.values, true);
      checkPairSizes(RECORD_KIND, id, pairs, host.maxEntryBytes, commandRoom(host, RECORD_KIND, id));
      return (host, timeoutMs) => proposeEntries(host, RECORD_KIND, id, pairs, timeoutMs);
    },
  },
};

/** The queue. */
export const QUEUE: CollectionKind<HamokQueueConfig<unknown>, HamokQueue<unknown>> = {
  kind: QUEUE_KIND,
  idOf: (config) => config?.queueId,
  state: (id) => new HamokQueueState(id),
  view: (context, config) => new HamokQueue(context.host, config),
  snapshot: {
    field: "queues",
    of: (state) => (state as HamokQueueState).toSnapshot(),
    check: (image, index, host) => {
      const queue = imageFields(image, "queues", index);
      const id = imageString(queue.queueId, `the queueId of snapshot queues[${index}]`);
      if (!Array.isArray(queue.items)) {
        throw new HamokConfigError(`queue '${id}': the snapshot's items must be an array`);
      }
      const items: unknown[] = queue.items.slice();
      for (let i = 0; i < items.length; i++) checkQueueItem(items[i], id, "snapshot item", i);
      // a queue's content goes in one command: one that cannot be replicated is refused before
      // anything of the snapshot is proposed (the maps and records before it went in, alone)
      const limit = host.maxEntryBytes;
      const size = encodeCbor(items).byteLength + commandRoom(host, QUEUE_KIND, id);
      if (size > limit) {
        throw new HamokPayloadTooLargeError(
          `queue '${id}': its snapshot takes ${size} bytes in one command; the largest entry this peer can replicate is ${limit} bytes`,
          { size, limit },
        );
      }
      return async (host, timeoutMs) => {
        await host.propose(QUEUE_KIND, id, "import", items, { timeoutMs });
      };
    },
  },
};

/** The remote map over the application's store (not exported: its data lives in the store). */
export const REMOTE_MAP: CollectionKind<
  HamokRemoteMapConfig<unknown, unknown>,
  HamokRemoteMap<unknown, unknown>
> = {
  kind: REMOTE_MAP_KIND,
  idOf: (config) => config?.mapId,
  state: (id) => new HamokRemoteMapState(id),
  view: (context, config) => new HamokRemoteMap(context.host, config, context.leadership),
};

/** Every kind, in the order snapshots are imported (emitters, maps, records, queues). */
export const COLLECTION_KINDS: readonly CollectionKind<never, { closeByHost(): void }>[] = [
  EMITTER,
  MAP,
  RECORD,
  QUEUE,
  REMOTE_MAP,
] as unknown as readonly CollectionKind<never, { closeByHost(): void }>[];

const BY_NAME = new Map<string, CollectionKind<never, { closeByHost(): void }>>(
  COLLECTION_KINDS.map((kind) => [kind.kind, kind]),
);

/** What the registry needs of the peer that holds the live collections and the states. */
export interface KindsHost extends CollectionHost {
  /** Registers a live collection made by `create` (a second one of the same kind and id throws). */
  hostCollection<C extends { closeByHost(): void }>(kind: string, id: unknown, create: () => C): C;
  /** The live collection of (kind, id), if any. */
  hostedCollection<C>(kind: string, id: unknown): C | undefined;
  /** Every replicated state, as `[kind, id, state]`. */
  replicatedStates(): IterableIterator<[kind: string, id: string, state: ReplicatedState]>;
  /** The index of the last entry applied. */
  readonly appliedIndex: number;
}

/** A new view of `kind` (a second live one with the same id is a `HamokConfigError`). */
export function createView<C, V extends { closeByHost(): void }>(
  context: ViewContext & { readonly host: KindsHost },
  kind: CollectionKind<C, V>,
  config: C,
): V {
  return context.host.hostCollection(kind.kind, kind.idOf(config), () => kind.view(context, config));
}

/** The live view of `kind` with the id `config` names, or a new one. */
export function getOrCreateView<C, V extends { closeByHost(): void }>(
  context: ViewContext & { readonly host: KindsHost },
  kind: CollectionKind<C, V>,
  config: C,
): V {
  return context.host.hostedCollection<V>(kind.kind, kind.idOf(config)) ?? createView(context, kind, config);
}

type SnapshotFields = { -readonly [F in SnapshotField]: unknown[] };

/** Every exported state of `host` as one snapshot, made at once. */
export function exportSnapshot(host: KindsHost): HamokSnapshot {
  const fields: SnapshotFields = { emitters: [], queues: [], maps: [], records: [] };
  for (const [kind, , state] of host.replicatedStates()) {
    const snapshot = BY_NAME.get(kind)?.snapshot;
    if (snapshot !== undefined) fields[snapshot.field].push(snapshot.of(state));
  }
  return {
    version: 1,
    peerId: host.localPeerId,
    appliedIndex: host.appliedIndex,
    ...fields,
  } as HamokSnapshot;
}

/**
 * The content of {@linkcode exportSnapshot} in parts: first the states of kinds exported whole,
 * then each state of a kind exported in parts, `max` entries at most per part, awaiting `pause()`
 * before each of those.
 */
export async function* exportSnapshotParts(
  host: KindsHost,
  max: number,
  pause: () => Promise<void>,
): AsyncGenerator<HamokSnapshot, void, undefined> {
  const part = (fields: Partial<SnapshotFields>): HamokSnapshot =>
    ({
      version: 1,
      peerId: host.localPeerId,
      appliedIndex: host.appliedIndex,
      emitters: [],
      ...fields,
    }) as HamokSnapshot;
  const whole: Partial<SnapshotFields> = {};
  for (const kind of COLLECTION_KINDS) {
    if (kind.snapshot !== undefined && kind.snapshot.parts === undefined) whole[kind.snapshot.field] = [];
  }
  for (const [kind, , state] of host.replicatedStates()) {
    const snapshot = BY_NAME.get(kind)?.snapshot;
    if (snapshot !== undefined && snapshot.parts === undefined) {
      whole[snapshot.field]!.push(snapshot.of(state));
    }
  }
  yield part(whole);
  for (const [kind, , state] of host.replicatedStates()) {
    const snapshot = BY_NAME.get(kind)?.snapshot;
    if (snapshot?.parts === undefined) continue;
    const parts = snapshot.parts(state, max);
    for (;;) {
      await pause();
      const next = parts.next();
      if (next.done === true) break;
      yield part({ [snapshot.field]: [next.value] });
    }
  }
}

/**
 * Imports a snapshot through consensus, kind by kind, each image awaited in turn. Every image is
 * checked first (see {@linkcode HamokSnapshot} and {@linkcode KindSnapshot.check}): a snapshot that
 * fails a check rejects with `HamokConfigError` or `HamokCodecError` and proposes nothing at all.
 */
export async function importSnapshot(
  host: CollectionHost,
  snapshot: HamokSnapshot,
  timeoutMs: number,
): Promise<void> {
  if (snapshot === null || typeof snapshot !== "object" || snapshot.version !== 1) {
    throw new HamokConfigError("not a Hamok snapshot (version 1)");
  }
  const imports: ImageImport[] = [];
  for (const kind of COLLECTION_KINDS) {
    const spec = kind.snapshot;
    if (spec === undefined) continue;
    const images: unknown = snapshot[spec.field] ?? [];
    if (!Array.isArray(images)) throw new HamokConfigError(`the snapshot's ${spec.field} must be an array`);
    for (let i = 0; i < images.length; i++) imports.push(spec.check(images[i], i, host));
  }
  for (const run of imports) await run(host, timeoutMs);
}
