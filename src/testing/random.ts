/**
 * A seeded, deterministic pseudo-random generator for tests and the virtual network: xoshiro128** (Blackman and
 * Vigna) seeded through splitmix32. It implements `RandomSource`, so a core machine given `SeededRandom` produces the
 * same transaction IDs, tie-breakers and credentials on every run with the same seed. Not for production use: it is
 * not cryptographically secure.
 * @module
 */
import type { RandomSource } from '../types.js';

/** What a seed may be: a number (integers up to 2^53 keep all their bits), a bigint, or any string. */
export type Seed = number | bigint | string;

// FNV-1a over UTF-16 code units: turns a seed text into 32 bits for splitmix32.
function fnv1a(text: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

// One splitmix32 step: a well-mixed 32-bit output from a counter, used only to fill the xoshiro state.
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

function seedText(seed: Seed): string {
  if (typeof seed === 'string') return `s:${seed}`;
  if (typeof seed === 'bigint') return `n:${seed.toString()}`;
  if (!Number.isFinite(seed)) throw new RangeError('seed must be a finite number');
  return `n:${Number.isInteger(seed) ? BigInt(seed).toString() : String(seed)}`;
}

/**
 * A deterministic `RandomSource`. The same seed gives the same sequence on every platform (only 32-bit integer
 * arithmetic is used). `fork(label)` derives an independent generator from the seed and a label, not from the current
 * state, so adding draws to one fork never shifts another.
 */
export class SeededRandom implements RandomSource {
  readonly #text: string;
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** Creates a generator. Equal seeds (e.g. `42` and `42n`) give equal sequences. */
  constructor(seed: Seed) {
    this.#text = seedText(seed);
    let x = fnv1a(this.#text, 0x811c9dc5) ^ Math.imul(fnv1a(this.#text, 0x050c5d1f), 0x9e3779b1);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) | 0;
      words.push(splitmix32(x));
    }
    // xoshiro must not start from the all-zero state.
    if (!words.some((w) => w !== 0)) words[0] = 1;
    [this.#s0, this.#s1, this.#s2, this.#s3] = words as [number, number, number, number];
  }

  /** The seed text this generator was built from (for error messages and trace headers). */
  get seed(): string {
    return this.#text;
  }

  /** The next 32-bit unsigned integer (xoshiro128**). */
  next(): number {
    const s1 = this.#s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float in [0, 1) with 32 bits of precision. */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** An integer in [min, max) (bias below 2^-32 relative; fine for simulation). Throws when `max <= min`. */
  int(min: number, max: number): number {
    if (!(max > min)) throw new RangeError(`empty range [${min}, ${max})`);
    return min + Math.floor(this.float() * (max - min));
  }

  /** True with probability `p`. Always draws once, so later draws do not depend on `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** Fills and returns `n` random bytes (`RandomSource`). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let w = this.next();
      for (let j = i; j < Math.min(n, i + 4); j++) {
        out[j] = w & 0xff;
        w >>>= 8;
      }
    }
    return out;
  }

  /** An independent generator for `label`, derived from this generator's seed (not its state). */
  fork(label: string): SeededRandom {
    return new SeededRandom(`${this.#text}/${label}`);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
