/**
 * Credentials and keyed hashes for MESSAGE-INTEGRITY (HMAC-SHA1) and MESSAGE-INTEGRITY-SHA256 (RFC 8489 §9, §14.5,
 * §14.6). HMAC through node:crypto (by default, see {@link HmacProvider}) is pure computation, so it stays in the
 * sans-IO core.
 * @module
 */
import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
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

/**
 * Where MESSAGE-INTEGRITY (HMAC-SHA1) and MESSAGE-INTEGRITY-SHA256 come from. The default is node:crypto; a runtime
 * or a FIPS build with its own HMAC installs another with {@link setHmacProvider}. A MAC covers the concatenation of
 * `parts`, so the codec can hash a received message with a patched Length field without copying it; the parts are
 * views of buffers icewire reuses, or of the received message with its Length field patched for the duration of the
 * call: valid during the call only.
 */
export interface HmacProvider {
  /** HMAC-SHA1 of `parts` under `key`: 20 bytes. */
  sha1(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
  /** HMAC-SHA256 of `parts` under `key`: 32 bytes. */
  sha256(key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array;
}

// A key is used for every check of a session, and node:crypto turns raw key bytes into a key object on each
// createHmac: the object is kept per key array. A caller may reuse an array for another key, so the bytes it was
// made from are kept too and compared on each use (a stale object would verify MACs under the wrong key).
const keyObjects = new WeakMap<Uint8Array, { readonly bytes: Uint8Array; readonly object: KeyObject }>();
function keyObject(key: Uint8Array): KeyObject {
  const cached = keyObjects.get(key);
  if (cached !== undefined && sameBytes(cached.bytes, key)) return cached.object;
  const entry = { bytes: Uint8Array.from(key), object: createSecretKey(key) };
  keyObjects.set(key, entry);
  return entry.object;
}

// Four bytes a step: a loop's own overhead costs as much as its byte, and a key is compared on every MAC (~33 -> ~16
// ns for a 26-byte ICE password).
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length;
  if (n !== b.length) return false;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    if (((a[i]! ^ b[i]!) | (a[i + 1]! ^ b[i + 1]!) | (a[i + 2]! ^ b[i + 2]!) | (a[i + 3]! ^ b[i + 3]!)) !== 0) return false;
  }
  for (; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}

// The MAC as a 'binary' (latin1: one char per byte, lossless) string. digest() as a Buffer makes node allocate a
// fresh off-heap ArrayBuffer for 20 bytes (~0.45 us, a quarter of the HMAC); a string is a small heap object.
function nodeDigest(algorithm: 'sha1' | 'sha256', key: Uint8Array, parts: readonly Uint8Array[]): string {
  const h = createHmac(algorithm, keyObject(key));
  for (const p of parts) h.update(p);
  return h.digest('binary');
}

function nodeHmac(algorithm: 'sha1' | 'sha256', key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  // Buffer.from carves the bytes from node's pool: off-heap, which timingSafeEqual needs to stay cheap.
  return Buffer.from(nodeDigest(algorithm, key, parts), 'latin1');
}

/** The default provider: node:crypto `createHmac`. */
export const nodeHmacProvider: HmacProvider = {
  sha1: (key, parts) => nodeHmac('sha1', key, parts),
  sha256: (key, parts) => nodeHmac('sha256', key, parts),
};

let provider: HmacProvider = nodeHmacProvider;

/** Installs `next` for every MAC computed from now on, process-wide; returns the provider it replaces. */
export function setHmacProvider(next: HmacProvider): HmacProvider {
  const previous = provider;
  provider = next;
  return previous;
}

/** HMAC-SHA1 (20 bytes) or HMAC-SHA256 (32 bytes) of the concatenated `parts`, through the installed provider. */
export function hmac(algorithm: 'sha1' | 'sha256', key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  return algorithm === 'sha1' ? provider.sha1(key, parts) : provider.sha256(key, parts);
}

/**
 * Writes the first `max` bytes of the HMAC-SHA1 or HMAC-SHA256 of `data` under `key`, through the installed provider,
 * into `out` at `at`; returns how many bytes it wrote. With the default provider the MAC goes from node:crypto
 * straight into `out`, with no array in between (~0.1 us less per MAC than {@link hmac}: the codec's hot path).
 */
export function hmacInto(
  algorithm: 'sha1' | 'sha256',
  key: Uint8Array,
  data: Uint8Array,
  out: Uint8Array,
  at: number,
  max: number,
): number {
  if (provider !== nodeHmacProvider) {
    const mac = hmac(algorithm, key, data);
    const n = Math.min(mac.length, max);
    for (let i = 0; i < n; i++) out[at + i] = mac[i]!;
    return n;
  }
  // One part: straight to node:crypto, without the parts array and its loop.
  const s = createHmac(algorithm, keyObject(key)).update(data).digest('binary');
  const n = Math.min(s.length, max);
  let i = 0;
  // Four bytes a step (MACs are 16-32 bytes, multiples of 4): ~10 ns less per MAC than one a step.
  for (; i + 4 <= n; i += 4) {
    out[at + i] = s.charCodeAt(i);
    out[at + i + 1] = s.charCodeAt(i + 1);
    out[at + i + 2] = s.charCodeAt(i + 2);
    out[at + i + 3] = s.charCodeAt(i + 3);
  }
  for (; i < n; i++) out[at + i] = s.charCodeAt(i);
  return n;
}

/** Constant-time comparison of `expected` with the first `expected.length` bytes of a computed MAC. */
export function macEquals(expected: Uint8Array, computed: Uint8Array): boolean {
  if (expected.length > computed.length || expected.length === 0) return false;
  const c = computed.length === expected.length ? computed : computed.subarray(0, expected.length);
  return timingSafeEqual(expected, c);
}
