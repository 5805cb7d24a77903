import { randomBytes } from 'node:crypto';
import type { RandomSource } from '../types.js';

/** The production RandomSource: `crypto.randomBytes` (transaction IDs, tie-breakers, ufrag/pwd, mDNS names). */
export const cryptoRandom: RandomSource = { bytes: (n) => new Uint8Array(randomBytes(n)) };
