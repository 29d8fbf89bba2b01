/**
 * The simulator's agenda: a binary min-heap of events ordered by virtual time, ties broken by the
 * order in which they were scheduled (so runs are deterministic).
 *
 * @module
 */

/**
 * A priority queue of `T` keyed by (time, insertion order).
 *
 * @example
 * ```ts
 * const q = new EventQueue<string>();
 * q.push(5, "b");
 * q.push(1, "a");
 * q.pop(); // "a" (q.time of it was 1)
 * ```
 */
export class EventQueue<T> {
  #times: number[] = [];
  #seqs: number[] = [];
  #items: T[] = [];
  #seq = 0;

  /** Number of queued events. */
  get size(): number {
    return this.#items.length;
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.#items.length === 0 ? Infinity : this.#times[0];
  }

  /** Schedules `item` at `time`. */
  push(time: number, item: T): void {
    const times = this.#times, seqs = this.#seqs, items = this.#items;
    const seq = this.#seq++;
    let i = items.length;
    times.push(time);
    seqs.push(seq);
    items.push(item);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p] < time || (times[p] === time && seqs[p] < seq)) break;
      times[i] = times[p];
      seqs[i] = seqs[p];
      items[i] = items[p];
      i = p;
    }
    times[i] = time;
    seqs[i] = seq;
    items[i] = item;
  }

  /** Removes and returns the earliest event (undefined when empty). */
  pop(): T | undefined {
    const times = this.#times, seqs = this.#seqs, items = this.#items;
    const n = items.length;
    if (n === 0) return undefined;
    const top = items[0];
    const lastT = times.pop()!, lastS = seqs.pop()!, lastI = items.pop()!;
    if (n > 1) {
      let i = 0;
      const m = n - 1;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && (times[c + 1] < times[c] || (times[c + 1] === times[c] && seqs[c + 1] < seqs[c]))) {
          c++;
        }
        if (lastT < times[c] || (lastT === times[c] && lastS < seqs[c])) break;
        times[i] = times[c];
        seqs[i] = seqs[c];
        items[i] = items[c];
        i = c;
      }
      times[i] = lastT;
      seqs[i] = lastS;
      items[i] = lastI;
    }
    return top;
  }
}
