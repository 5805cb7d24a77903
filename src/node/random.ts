import { randomFillSync } from 'node:crypto';
import type { RandomSource } from '../types.js';

// One call into OpenSSL's CSPRNG per ~340 transaction IDs instead of one per ID: in a process that just woke up a
// lone randomBytes(12) costs 20-50 µs (measured in bench/connect.bench.ts), on the path of every first and
// triggered check. Bytes are copied out (never aliased), wiped from the pool as they are handed out, and never reused.
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * The production RandomSource: the same CSPRNG as `crypto.randomBytes`, drawn through a small pool (transaction IDs,
 * tie-breakers, ufrag/pwd, mDNS names).
 */
export const cryptoRandom: RandomSource = {
  bytes(n: number): Uint8Array {
    if (n > POOL_BYTES) return randomFillSync(new Uint8Array(n));
    if (offset + n > POOL_BYTES) {
      randomFillSync(pool);
      offset = 0;
    }
    const out = pool.slice(offset, offset + n);
    pool.fill(0, offset, offset + n);
    offset += n;
    return out;
  },
};
