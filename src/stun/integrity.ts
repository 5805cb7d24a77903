/**
 * Credentials and keyed hashes for MESSAGE-INTEGRITY (HMAC-SHA1) and MESSAGE-INTEGRITY-SHA256 (RFC 8489 §9, §14.5,
 * §14.6). HMAC through node:crypto is pure computation, so it stays in the sans-IO core.
 * @module
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { PasswordAlgorithm } from './constants.js';

/** String preparation profile for credentials. RFC 8489 uses OpaqueString (RFC 8265); RFC 5389 used SASLprep. */
export type CredentialProfile = 'opaque-string' | 'saslprep' | 'none';

// Non-ASCII space characters (RFC 3454 C.1.2), mapped to U+0020 by SASLprep.
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/gu;
// OpaqueString (RFC 8265 §4.2.2) maps "non-ASCII space" = Unicode Zs other than U+0020 (so not U+200B, which is Cf).
const NON_ASCII_ZS = /(?! )\p{Zs}/gu;
// "Commonly mapped to nothing" (RFC 3454 B.1), removed by SASLprep.
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/gu;
// Control characters prohibited by both profiles (RFC 3454 C.2; RFC 8264 disallows Cc).
const PROHIBITED = /[\u0000-\u001f\u007f-\u009f\u06dd\u070f\u180e\u200e\u200f\u2028\u2029\u202a-\u202e\u2060-\u2063\u206a-\u206f\ufeff\ufff9-\ufffc\ud800-\udfff]/u;

// RFC 8264 FreeformClass (the base of OpaqueString) disallows controls, default-ignorable code points (its
// PrecisIgnorableProperties category, e.g. U+00AD SOFT HYPHEN, which SASLprep instead maps to nothing), noncharacters
// and unassigned code points.
const FREEFORM_DISALLOWED = /[\p{Cc}\p{Cn}\p{Cs}\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]/u;

/**
 * Prepares a credential string. `opaque-string` (RFC 8265 §4.2): non-ASCII spaces become U+0020, then NFC.
 * `saslprep` (RFC 4013): B.1 characters removed, non-ASCII spaces mapped, NFKC. Throws `RangeError` on a
 * prohibited character, so a bad configured password fails at configuration time, not silently on the wire.
 */
export function prepareCredential(text: string, profile: CredentialProfile = 'opaque-string'): string {
  if (profile === 'none') return text;
  let s: string;
  if (profile === 'saslprep') s = text.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  else s = text.replace(NON_ASCII_ZS, ' ').normalize('NFC');
  if (PROHIBITED.test(s)) throw new RangeError('credential contains a prohibited character');
  if (profile === 'opaque-string' && FREEFORM_DISALLOWED.test(s)) throw new RangeError('credential contains a character OpaqueString disallows');
  return s;
}

/** Short-term credential key (RFC 8489 §9.1.1): OpaqueString(password) as UTF-8. ICE uses this with the peer's pwd. */
export function shortTermKey(password: string, profile: CredentialProfile = 'opaque-string'): Uint8Array {
  return Buffer.from(prepareCredential(password, profile), 'utf8');
}

/**
 * Long-term credential key (RFC 8489 §9.2.2): MD5 or SHA-256 of `username ":" OpaqueString(realm) ":"
 * OpaqueString(password)`. The username is used as configured (already prepared, or as it sits in USERNAME).
 */
export function longTermKey(
  username: string,
  realm: string,
  password: string,
  algorithm: number = PasswordAlgorithm.MD5,
  profile: CredentialProfile = 'opaque-string',
): Uint8Array {
  const input = `${username}:${prepareCredential(realm, profile)}:${prepareCredential(password, profile)}`;
  const hash = algorithm === PasswordAlgorithm.SHA256 ? 'sha256' : 'md5';
  return createHash(hash).update(input, 'utf8').digest();
}

/** USERHASH (RFC 8489 §14.4): SHA-256(OpaqueString(username) ":" OpaqueString(realm)). */
export function userHash(username: string, realm: string, profile: CredentialProfile = 'opaque-string'): Uint8Array {
  return createHash('sha256')
    .update(`${prepareCredential(username, profile)}:${prepareCredential(realm, profile)}`, 'utf8')
    .digest();
}

/** HMAC-SHA1 (20 bytes) or HMAC-SHA256 (32 bytes) of `data`. */
export function hmac(algorithm: 'sha1' | 'sha256', key: Uint8Array, data: Uint8Array): Uint8Array {
  if (algorithm === 'sha1') {
    const out = new Uint8Array(20);
    hmacSha1Into(key, data, data.length, -1, out, 0);
    return out;
  }
  return createHmac(algorithm, key).update(data).digest();
}

// ---- HMAC-SHA1 for MESSAGE-INTEGRITY ------------------------------------------------------------------------
//
// Why not node:crypto here: every ICE check costs two HMAC-SHA1 (one to sign, one to verify) over ~100 bytes, and
// `createHmac` takes ~2 us per call at that size, mostly object and context set-up rather than the 5 SHA-1 blocks
// it hashes; with the keyed pads precomputed only 3 blocks remain (bench/stun-codec.bench.ts). This is plain
// FIPS 180-4 SHA-1 inside RFC 2104 HMAC, with the keyed inner and outer states computed once per key (cached per key
// object and re-validated against a copy of the key bytes on every use, so mutating a key in place is safe). It is
// tested against node:crypto on random keys and messages (test/stun/integrity.test.ts). SHA-256 stays on node:crypto.

const W = new Int32Array(80);
const BLOCK = new Uint8Array(64);

function compress(h: Int32Array, b: Uint8Array, offset: number): void {
  for (let t = 0; t < 16; t++) {
    const i = offset + (t << 2);
    W[t] = (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
  }
  for (let t = 16; t < 80; t++) {
    const x = W[t - 3]! ^ W[t - 8]! ^ W[t - 14]! ^ W[t - 16]!;
    W[t] = (x << 1) | (x >>> 31);
  }
  let a = h[0]!;
  let bb = h[1]!;
  let c = h[2]!;
  let d = h[3]!;
  let e = h[4]!;
  let t = 0;
  // Four loops of 20 rounds, one per round function (FIPS 180-4 §4.1.1, §6.1.2).
  for (; t < 20; t++) {
    const temp = (((a << 5) | (a >>> 27)) + ((bb & c) | (~bb & d)) + e + 0x5a827999 + W[t]!) | 0;
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = temp;
  }
  for (; t < 40; t++) {
    const temp = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + e + 0x6ed9eba1 + W[t]!) | 0;
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = temp;
  }
  for (; t < 60; t++) {
    const temp = (((a << 5) | (a >>> 27)) + ((bb & c) | (bb & d) | (c & d)) + e - 0x70e44324 + W[t]!) | 0;
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = temp;
  }
  for (; t < 80; t++) {
    const temp = (((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + e - 0x359d3e2a + W[t]!) | 0;
    e = d;
    d = c;
    c = (bb << 30) | (bb >>> 2);
    bb = a;
    a = temp;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + bb) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
}

const SHA1_IV = Int32Array.of(0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0);

interface KeyState {
  readonly copy: Uint8Array;
  readonly inner: Int32Array;
  readonly outer: Int32Array;
}
const keyStates = new WeakMap<Uint8Array, KeyState>();

function keyState(key: Uint8Array): KeyState {
  const cached = keyStates.get(key);
  if (cached && cached.copy.length === key.length) {
    let same = true;
    for (let i = 0; i < key.length; i++) if (cached.copy[i] !== key[i]) same = false;
    if (same) return cached;
  }
  // RFC 2104 §2: keys longer than the block are hashed first.
  const k = key.length > 64 ? createHash('sha1').update(key).digest() : key;
  const inner = SHA1_IV.slice();
  const outer = SHA1_IV.slice();
  const pad = new Uint8Array(64);
  for (let i = 0; i < 64; i++) pad[i] = (k[i] ?? 0) ^ 0x36;
  compress(inner, pad, 0);
  for (let i = 0; i < 64; i++) pad[i] = (k[i] ?? 0) ^ 0x5c;
  compress(outer, pad, 0);
  const state = { copy: key.slice(), inner, outer };
  keyStates.set(key, state);
  return state;
}

const H = new Int32Array(5);

/**
 * HMAC-SHA1 with `key` over `data[0..end)`, written to `out[outOffset..outOffset+20)`. When `length` is not -1 it
 * replaces bytes 2-3 of `data` (the STUN header's Length field) in what is hashed: RFC 8489 §14.5 computes
 * MESSAGE-INTEGRITY as if the length covered the message up to the attribute, without touching the received bytes.
 */
export function hmacSha1Into(key: Uint8Array, data: Uint8Array, end: number, length: number, out: Uint8Array, outOffset: number): void {
  if (end < 0 || end > data.length || outOffset < 0 || outOffset + 20 > out.length) throw new RangeError('hmacSha1Into: range out of bounds');
  const ks = keyState(key);
  H.set(ks.inner);
  let pos = 0;
  // Full blocks.
  for (; pos + 64 <= end; pos += 64) {
    if (pos === 0 && length >= 0) {
      for (let i = 0; i < 64; i++) BLOCK[i] = data[i]!;
      BLOCK[2] = length >>> 8;
      BLOCK[3] = length & 0xff;
      compress(H, BLOCK, 0);
    } else {
      compress(H, data, pos);
    }
  }
  // Last partial block, then the SHA-1 padding: 0x80, zeros, 64-bit bit length of (64-byte key block + message).
  const rest = end - pos;
  BLOCK.fill(0);
  for (let i = 0; i < rest; i++) BLOCK[i] = data[pos + i]!;
  if (pos === 0 && length >= 0) {
    if (rest > 2) BLOCK[2] = length >>> 8;
    if (rest > 3) BLOCK[3] = length & 0xff;
  }
  BLOCK[rest] = 0x80;
  if (rest >= 56) {
    compress(H, BLOCK, 0);
    BLOCK.fill(0);
  }
  writeBitLength(BLOCK, 64 + end);
  compress(H, BLOCK, 0);
  // Outer hash: opad state, then the 20-byte inner digest.
  BLOCK.fill(0);
  for (let i = 0; i < 5; i++) writeWord(BLOCK, i << 2, H[i]!);
  BLOCK[20] = 0x80;
  writeBitLength(BLOCK, 64 + 20);
  H.set(ks.outer);
  compress(H, BLOCK, 0);
  for (let i = 0; i < 5; i++) writeWord(out, outOffset + (i << 2), H[i]!);
}

function writeWord(b: Uint8Array, at: number, w: number): void {
  b[at] = w >>> 24;
  b[at + 1] = (w >>> 16) & 0xff;
  b[at + 2] = (w >>> 8) & 0xff;
  b[at + 3] = w & 0xff;
}

// Byte lengths here are far below 2^29, so the high word of the 64-bit bit count is zero.
function writeBitLength(b: Uint8Array, bytes: number): void {
  writeWord(b, 56, 0);
  writeWord(b, 60, bytes * 8);
}

/** Constant-time comparison of `expected` with the first `expected.length` bytes of a computed MAC. */
export function macEquals(expected: Uint8Array, computed: Uint8Array): boolean {
  if (expected.length > computed.length || expected.length === 0) return false;
  const c = computed.length === expected.length ? computed : computed.subarray(0, expected.length);
  return timingSafeEqual(expected, c);
}
