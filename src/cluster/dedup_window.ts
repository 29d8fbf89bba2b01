/**
 * The dedup window of a state machine: the request ids of the most recently applied commands, with
 * their results, so that a retried proposal is answered with its first result instead of being
 * applied twice.
 *
 * Every peer looks up every applied command's request id here, and on most peers that id is a
 * string just decoded from the wire. Keyed by the string itself, each lookup would make the runtime
 * hash a fresh string (on Deno 2.9 that costs about 0.3 µs even for a short one, several times a
 * `Map` lookup by a small integer). So the window hashes the id's characters itself (FNV-1a, in
 * 30 bits) and finds the id through an open-addressing table of ring slots in an `Int32Array`
 * (linear probing, at most half full, removals by backward shift): a lookup reads a few adjacent
 * integers and compares one string. Probe runs are bounded by the window's size, whatever ids the
 * (authenticated) proposers choose.
 *
 * @module
 */

/** FNV-1a of the UTF-16 units of `s`, in 30 bits (a small integer on every engine). */
export function requestIdHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}

/**
 * The (kind, id) part of a command's fingerprint: with {@linkcode fingerprintWithOp}, a 30-bit number
 * (never 0) naming the command's target and operation, so that a request id used again for another
 * command is told from a retry of the same one. One per collection: worth keeping.
 */
export function targetFingerprint(kind: string, id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < kind.length; i++) h = Math.imul(h ^ kind.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0xffff, 0x01000193);
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return Math.imul(h ^ 0xffff, 0x01000193);
}

/** A command's fingerprint from its (kind, id) part ({@linkcode targetFingerprint}) and its op. */
export function fingerprintWithOp(target: number, op: string): number {
  let h = target;
  for (let i = 0; i < op.length; i++) h = Math.imul(h ^ op.charCodeAt(i), 0x01000193);
  return (h & 0x3fffffff) | 1;
}

/**
 * The last `size` request ids applied, in a ring, with their results.
 *
 * @example
 * ```ts ignore
 * const window = new DedupWindow(2);
 * window.remember("r1", "one");
 * window.remember("r2", "two");
 * window.remember("r3", "three"); // r1 leaves
 * console.log(window.find("r1"), window.resultAt(window.find("r2"))); // -1 "two"
 * ```
 */
export class DedupWindow {
  /** Ring slots. */
  readonly size: number;
  /** Per slot: the request id (undefined: empty). */
  readonly #ids: (string | undefined)[];
  /** Per slot: the result. */
  readonly #results: unknown[];
  /** Per slot: the hash of its id. */
  readonly #hashes: Int32Array;
  /** Per slot: the command's fingerprint (see {@linkcode targetFingerprint}; 0: not known, as restored). */
  readonly #marks: Int32Array;
  /** The index: ring slot + 1 at the position its hash probes to (0: free). */
  readonly #table: Int32Array;
  readonly #mask: number;
  /** The slot the next id goes into (the oldest one, once the ring is full). */
  #next = 0;

  /** Creates an empty window of `size` (> 0) slots. */
  constructor(size: number) {
    this.size = size;
    this.#ids = new Array(size).fill(undefined);
    this.#results = new Array(size).fill(undefined);
    this.#hashes = new Int32Array(size);
    this.#marks = new Int32Array(size);
    let capacity = 8;
    while (capacity < size * 2) capacity *= 2;
    this.#table = new Int32Array(capacity);
    this.#mask = capacity - 1;
  }

  /** The slot of `requestId`, or -1 if it is not in the window. */
  find(requestId: string): number {
    const hash = requestIdHash(requestId);
    const table = this.#table;
    const mask = this.#mask;
    for (let at = hash & mask;; at = (at + 1) & mask) {
      const entry = table[at]!;
      if (entry === 0) return -1;
      const slot = entry - 1;
      if (this.#hashes[slot] === hash && this.#ids[slot] === requestId) return slot;
    }
  }

  /** The result kept in a slot {@linkcode find} gave. */
  resultAt(slot: number): unknown {
    return this.#results[slot];
  }

  /** The fingerprint of the command kept in a slot {@linkcode find} gave (0: not known). */
  markAt(slot: number): number {
    return this.#marks[slot]!;
  }

  /**
   * Adds `requestId` (not in the window) with its result and its command's fingerprint (0 when not
   * known); the oldest id leaves a full window.
   */
  remember(requestId: string, result: unknown, mark = 0): void {
    const slot = this.#next;
    if (this.#ids[slot] !== undefined) this.#unindex(slot);
    const hash = requestIdHash(requestId);
    this.#ids[slot] = requestId;
    this.#results[slot] = result;
    this.#hashes[slot] = hash;
    this.#marks[slot] = mark;
    const table = this.#table;
    const mask = this.#mask;
    let at = hash & mask;
    while (table[at] !== 0) at = (at + 1) & mask;
    table[at] = slot + 1;
    this.#next = slot + 1 === this.size ? 0 : slot + 1;
  }

  /** Empties the window. */
  clear(): void {
    this.#ids.fill(undefined);
    this.#results.fill(undefined);
    this.#table.fill(0);
    this.#next = 0;
  }

  /**
   * `[requestId, result, mark]` of every id in the window, oldest first, as a new array (one plain
   * loop: a snapshot takes it while the peer waits, so it is kept to copying references). `mark` is
   * the command's fingerprint (0: not known).
   */
  pairs(): [requestId: string, result: unknown, mark: number][] {
    const n = this.size;
    const ids = this.#ids;
    const results = this.#results;
    const marks = this.#marks;
    const out: [string, unknown, number][] = [];
    for (let i = 0, slot = this.#next; i < n; i++, slot = slot + 1 === n ? 0 : slot + 1) {
      const id = ids[slot];
      if (id !== undefined) out.push([id, results[slot], marks[slot]!]);
    }
    return out;
  }

  /** Takes a slot out of the index, shifting back the entries probed past it. */
  #unindex(slot: number): void {
    const table = this.#table;
    const mask = this.#mask;
    const hashes = this.#hashes;
    let hole = hashes[slot]! & mask;
    while (table[hole] !== slot + 1) hole = (hole + 1) & mask;
    for (let at = (hole + 1) & mask;; at = (at + 1) & mask) {
      const entry = table[at]!;
      if (entry === 0) break;
      const home = hashes[entry - 1]! & mask;
      // the entry may fill the hole unless its home lies cyclically in (hole, at]
      const stays = hole <= at ? hole < home && home <= at : hole < home || home <= at;
      if (!stays) {
        table[hole] = entry;
        hole = at;
      }
    }
    table[hole] = 0;
    this.#ids[slot] = undefined;
    this.#results[slot] = undefined;
  }
}
