/**
 * The dedup window of a state machine: the request ids of the most recently applied commands, with
 * their results, so that a retried proposal is answered with its first result instead of being
 * applied twice.
 *
 * Every peer looks up every applied command's request id here, and on most peers that id is a
 * string just decoded from the wire. Keyed by the string itself, each lookup would make the runtime
 * hash a fresh string (on Deno 2.9 that costs about 0.3 µs even for a short one, several times a
 * `Map` lookup by a small integer). So the window hashes the id's characters itself (FNV-1a, in
 * 30 bits so that the hash is a small integer) and keys its index by that number; ids whose hashes
 * collide are chained through the ring and told apart by comparing the strings. The chains are
 * bounded by the window's size, whatever ids the (authenticated) proposers choose.
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
  /** Per slot: the next (older) slot whose id has the same hash, or -1. */
  readonly #chain: Int32Array;
  /** Hash -> the newest slot with an id of that hash. */
  readonly #heads = new Map<number, number>();
  /** The slot the next id goes into (the oldest one, once the ring is full). */
  #next = 0;

  /** Creates an empty window of `size` (> 0) slots. */
  constructor(size: number) {
    this.size = size;
    this.#ids = new Array(size).fill(undefined);
    this.#results = new Array(size).fill(undefined);
    this.#hashes = new Int32Array(size);
    this.#chain = new Int32Array(size).fill(-1);
  }

  /** The slot of `requestId`, or -1 if it is not in the window. */
  find(requestId: string): number {
    let slot = this.#heads.get(requestIdHash(requestId));
    if (slot === undefined) return -1;
    const ids = this.#ids;
    const chain = this.#chain;
    while (slot >= 0 && ids[slot] !== requestId) slot = chain[slot]!;
    return slot;
  }

  /** The result kept in a slot {@linkcode find} gave. */
  resultAt(slot: number): unknown {
    return this.#results[slot];
  }

  /** Adds `requestId` (not in the window) with its result; the oldest id leaves a full window. */
  remember(requestId: string, result: unknown): void {
    const slot = this.#next;
    if (this.#ids[slot] !== undefined) this.#unlink(slot);
    const hash = requestIdHash(requestId);
    this.#ids[slot] = requestId;
    this.#results[slot] = result;
    this.#hashes[slot] = hash;
    this.#chain[slot] = this.#heads.get(hash) ?? -1;
    this.#heads.set(hash, slot);
    this.#next = slot + 1 === this.size ? 0 : slot + 1;
  }

  /** Empties the window. */
  clear(): void {
    this.#ids.fill(undefined);
    this.#results.fill(undefined);
    this.#chain.fill(-1);
    this.#heads.clear();
    this.#next = 0;
  }

  /** `[requestId, result]` of every id in the window, oldest first. */
  *entries(): IterableIterator<[requestId: string, result: unknown]> {
    const n = this.size;
    for (let i = 0; i < n; i++) {
      const slot = (this.#next + i) % n;
      const id = this.#ids[slot];
      if (id !== undefined) yield [id, this.#results[slot]];
    }
  }

  /** Takes the oldest slot out of its hash chain (where it is the last link). */
  #unlink(slot: number): void {
    const hash = this.#hashes[slot]!;
    const chain = this.#chain;
    const head = this.#heads.get(hash)!;
    if (head === slot) {
      this.#heads.delete(hash);
    } else {
      let at = head;
      while (chain[at] !== slot) at = chain[at]!;
      chain[at] = chain[slot]!;
    }
    chain[slot] = -1;
    this.#ids[slot] = undefined;
    this.#results[slot] = undefined;
  }
}
