/**
 * The simulator's only source of randomness: a small, fast, seeded generator (xoshiro128**,
 * seeded through splitmix32). Every random choice of a simulation run, including each Raft node's
 * election-timeout `random`, is drawn from one root {@linkcode Prng} or from streams forked off it
 * in a deterministic order, so a seed replays bit for bit.
 *
 * @module
 */

/** splitmix32 step: returns the next state and a well-mixed 32-bit output. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

/**
 * A seeded xoshiro128** generator.
 *
 * @example
 * ```ts
 * const rng = new Prng(42);
 * const die = rng.int(6) + 1; // 1..6, the same for every run with seed 42
 * const child = rng.fork(); // an independent stream, also determined by the seed
 * ```
 */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Creates a generator from a seed (any integer; only its low 53 bits matter). */
  constructor(seed: number) {
    let s = (seed >>> 0) ^ Math.floor(seed / 0x100000000);
    let out: number;
    [s, out] = splitmix32(s);
    this.#a = out;
    [s, out] = splitmix32(s);
    this.#b = out;
    [s, out] = splitmix32(s);
    this.#c = out;
    [s, out] = splitmix32(s);
    this.#d = out;
    if ((this.#a | this.#b | this.#c | this.#d) === 0) this.#d = 1;
  }

  /** A generator with an explicit internal state (not all zero); for tests of the algorithm. */
  static fromState(a: number, b: number, c: number, d: number): Prng {
    const rng = new Prng(0);
    rng.#a = a | 0;
    rng.#b = b | 0;
    rng.#c = c | 0;
    rng.#d = d | 0;
    return rng;
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const b = this.#b;
    const x = Math.imul(b, 5);
    const rot = (x << 7) | (x >>> 25);
    const result = Math.imul(rot, 9) >>> 0;
    const t = b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = (this.#d << 11) | (this.#d >>> 21);
    return result;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 0x100000000;
  }

  /** Uniform integer in [0, n) for n >= 1. */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** One element of a non-empty array, chosen uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Index chosen with the given non-negative weights (at least one positive). */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i];
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /** A new generator seeded from this one's next outputs (an independent stream). */
  fork(): Prng {
    const hi = this.nextU32() & 0x1fffff;
    const lo = this.nextU32();
    return new Prng(hi * 0x100000000 + lo);
  }

  /** A `() => number` in [0, 1) drawing from this generator (for `RaftConfig.random`). */
  asRandom(): () => number {
    return () => this.next();
  }
}
