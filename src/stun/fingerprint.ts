/**
 * FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message up to the attribute, XOR 0x5354554e.
 * @module
 */
import { crc32 } from 'node:zlib';
import { FINGERPRINT_XOR } from './constants.js';

/** The FINGERPRINT value for `bytes` (the message up to, not including, the FINGERPRINT attribute). */
export function fingerprintOf(bytes: Uint8Array): number {
  return (crc32(bytes) ^ FINGERPRINT_XOR) >>> 0;
}
