/**
 * STUN message codec (RFC 8489 §5, §14): header, attribute framing with 4-byte padding, MESSAGE-INTEGRITY(-SHA256)
 * and FINGERPRINT. Decoding never throws on the hot path: `tryDecodeStunMessage` returns a discriminated result;
 * `decodeStunMessage` wraps it and throws `StunDecodeError`.
 * @module
 */
import { timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { StunDecodeError, type StunDecodeReason } from '../errors.js';
import { AttributeType, FINGERPRINT_XOR, HEADER_LENGTH } from './constants.js';
import { fingerprintOf } from './fingerprint.js';
import { hmacInto } from './integrity.js';

/** The four STUN classes (RFC 8489 §5). */
export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** One attribute as it sits on the wire: its type and unpadded value. */
export interface StunAttribute {
  readonly type: number;
  readonly value: Uint8Array;
}

/** A STUN message as a value. `transactionId` is the 96-bit (12-byte) transaction ID. */
export interface StunMessage {
  readonly method: number;
  readonly cls: StunClass;
  readonly transactionId: Uint8Array;
  /** In wire order. Integrity and FINGERPRINT are added by the encoder, not listed here. */
  readonly attributes: readonly StunAttribute[];
}

/**
 * A decoded message. `attributes` lists what counts: per RFC 8489 §14.5-14.7 anything after MESSAGE-INTEGRITY other
 * than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, after MESSAGE-INTEGRITY-SHA256 other than FINGERPRINT, and after
 * FINGERPRINT, is ignored (and counted in `ignoredAttributes`).
 */
export interface DecodedStunMessage extends StunMessage {
  /** The whole message as received (a view, not a copy). */
  readonly raw: Uint8Array;
  /** Byte offset of MESSAGE-INTEGRITY's attribute header in `raw`, or -1. */
  readonly integrityOffset: number;
  /** Byte offset of MESSAGE-INTEGRITY-SHA256's attribute header in `raw`, or -1. */
  readonly integritySha256Offset: number;
  /** True when a FINGERPRINT attribute was present (and, having been decoded, correct). */
  readonly hasFingerprint: boolean;
  readonly ignoredAttributes: number;
}

/** Result of `tryDecodeStunMessage`: no exception is created for bad input. */
export type StunDecodeResult =
  | { readonly ok: true; readonly message: DecodedStunMessage }
  | { readonly ok: false; readonly reason: StunDecodeReason; readonly offset: number };

const CLASS_BITS: Record<StunClass, number> = { request: 0x000, indication: 0x010, success: 0x100, error: 0x110 };
const CLASS_OF: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

/** Encodes method and class into the 14-bit message type (RFC 8489 §5, figure 3). */
export function messageType(method: number, cls: StunClass): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | CLASS_BITS[cls];
}

function splitType(type: number): { method: number; cls: StunClass } {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  const c = ((type >> 4) & 1) | ((type >> 7) & 2);
  return { method, cls: CLASS_OF[c]! };
}

/** True when `data` starts like a STUN message: top two bits zero, length multiple of 4, magic cookie (RFC 7983). */
export function looksLikeStun(data: Uint8Array): boolean {
  return (
    data.length >= HEADER_LENGTH &&
    (data[0]! & 0xc0) === 0 &&
    (data[3]! & 0x03) === 0 &&
    data[4] === 0x21 &&
    data[5] === 0x12 &&
    data[6] === 0xa4 &&
    data[7] === 0x42
  );
}

const fail = (reason: StunDecodeReason, offset: number): StunDecodeResult => ({ ok: false, reason, offset });

/**
 * Attributes a message may carry before it is dropped undecoded. RFC 8489 sets no limit; ICE checks carry about 6,
 * TURN messages about 10. A 60 KB message of 15,000 attributes cost ~0.8 ms to decode: a flood of them starved the
 * process.
 */
export const MAX_STUN_ATTRIBUTES = 64;

/**
 * Decodes a STUN message and checks FINGERPRINT when present. MESSAGE-INTEGRITY is not checked here (it needs a
 * key): call `verifyIntegrity`. Never throws. Attribute values and the transaction ID are plain `Uint8Array` views
 * of `data` (not copies, and not Buffers even when `data` is one).
 */
export function tryDecodeStunMessage(data: Uint8Array): StunDecodeResult {
  if (data.length < HEADER_LENGTH) return fail('short-header', data.length);
  // Views of the message are made on its ArrayBuffer, not with `subarray`: ~16 ns a view against ~30 (and ~50 on a
  // Buffer, whose `subarray` runs Buffer's species constructor in JS), and they are plain Uint8Arrays either way.
  // Reading `.buffer` moves a small on-heap array off-heap once; datagrams and encoded messages are already there.
  const buffer = data.buffer;
  const base = data.byteOffset;
  if ((data[0]! & 0xc0) !== 0) return fail('not-stun', 0);
  const type = (data[0]! << 8) | data[1]!;
  const length = (data[2]! << 8) | data[3]!;
  if (data[4] !== 0x21 || data[5] !== 0x12 || data[6] !== 0xa4 || data[7] !== 0x42) return fail('bad-cookie', 4);
  if (length % 4 !== 0) return fail('bad-length', 2);
  if (HEADER_LENGTH + length > data.length) return fail('bad-length', 2);
  const end = HEADER_LENGTH + length;
  const attributes: StunAttribute[] = [];
  let integrityOffset = -1;
  let integritySha256Offset = -1;
  let hasFingerprint = false;
  let ignoredAttributes = 0;
  let count = 0;
  let pos = HEADER_LENGTH;
  while (pos < end) {
    if (pos + 4 > end) return fail('attribute-overrun', pos);
    if (++count > MAX_STUN_ATTRIBUTES) return fail('too-many-attributes', pos);
    const attrType = (data[pos]! << 8) | data[pos + 1]!;
    const attrLen = (data[pos + 2]! << 8) | data[pos + 3]!;
    const valueStart = pos + 4;
    const padded = (attrLen + 3) & ~3;
    if (valueStart + padded > end) return fail(valueStart + attrLen > end ? 'attribute-overrun' : 'bad-padding', pos);
    if (hasFingerprint) {
      ignoredAttributes++;
    } else if (attrType === AttributeType.FINGERPRINT) {
      if (attrLen !== 4) return fail('bad-attribute', pos);
      const expected = ((data[valueStart]! << 24) | (data[valueStart + 1]! << 16) | (data[valueStart + 2]! << 8) | data[valueStart + 3]!) >>> 0;
      // The CRC covers the message up to this attribute, with the length field covering the FINGERPRINT itself. In
      // the usual case FINGERPRINT is last, the header already says so and one pass over the bytes suffices.
      const crc =
        length === pos + 8 - HEADER_LENGTH
          ? crc32(new Uint8Array(buffer, base, pos))
          : crc32(new Uint8Array(buffer, base + 4, pos - 4), crc32(patchedHead(data, pos + 8 - HEADER_LENGTH)));
      if (((crc ^ FINGERPRINT_XOR) >>> 0) !== expected) {
        return fail('fingerprint-mismatch', pos);
      }
      hasFingerprint = true;
    } else if (integritySha256Offset >= 0) {
      ignoredAttributes++;
    } else if (attrType === AttributeType.MESSAGE_INTEGRITY_SHA256) {
      if (attrLen < 16 || attrLen > 32 || attrLen % 4 !== 0) return fail('bad-attribute', pos);
      integritySha256Offset = pos;
    } else if (integrityOffset >= 0) {
      ignoredAttributes++;
    } else if (attrType === AttributeType.MESSAGE_INTEGRITY) {
      if (attrLen !== 20) return fail('bad-attribute', pos);
      integrityOffset = pos;
    } else {
      attributes.push({ type: attrType, value: new Uint8Array(buffer, base + valueStart, attrLen) });
    }
    pos = valueStart + padded;
  }
  const { method, cls } = splitType(type);
  return {
    ok: true,
    message: {
      method,
      cls,
      transactionId: new Uint8Array(buffer, base + 8, 12),
      attributes,
      raw: end === data.length ? data : new Uint8Array(buffer, base, end),
      integrityOffset,
      integritySha256Offset,
      hasFingerprint,
      ignoredAttributes,
    },
  };
}

/** Decodes a STUN message, throwing `StunDecodeError` on bad input. Prefer `tryDecodeStunMessage` on hot paths. */
export function decodeStunMessage(data: Uint8Array): DecodedStunMessage {
  const r = tryDecodeStunMessage(data);
  if (!r.ok) throw new StunDecodeError(r.reason, r.offset);
  return r.message;
}

// The first 4 header bytes with the length field set to `length`. RFC 8489 §14.5-14.7: a MAC or CRC covers the
// message up to the attribute, with the length field covering up to and including that attribute. Hashing this
// head and then raw[4..end) avoids copying the message.
// Reused scratch (the codec is synchronous and single-threaded per isolate, so sharing is safe).
const HEAD = new Uint8Array(4);
function patchedHead(raw: Uint8Array, length: number): Uint8Array {
  HEAD[0] = raw[0]!;
  HEAD[1] = raw[1]!;
  HEAD[2] = length >> 8;
  HEAD[3] = length & 0xff;
  return HEAD;
}

// The MAC input is the received message up to the MAC attribute, hashed in one update (two updates, a patched head
// and the rest, cost ~7% more per check), so its length field must first say "up to and including this MAC".
// Usually it says more (FINGERPRINT follows), so the two bytes are patched in place and restored, not copied with
// the ~100 bytes before them. Safe: JS runs on one thread and nothing but the synchronous HMAC runs between patch
// and restore (node:crypto consumes the bytes before `update` returns; a provider may read its input during the
// call only, see HmacProvider), so no other code can see the patched bytes. The exception is memory another thread
// can read, a SharedArrayBuffer: that message is copied instead.
let macInput = new Uint8Array(1500);
// Both compared MACs sit in off-heap scratch (explicit ArrayBuffers): timingSafeEqual on a small array that lives on
// V8's heap first moves it off-heap, ~0.45 us, and on a fresh view of the message pays for the view. One view per
// MAC length (20, or 16-32 for -SHA256).
const COMPUTED_SCRATCH = new ArrayBuffer(32);
const RECEIVED_SCRATCH = new ArrayBuffer(32);
const computedViews: Uint8Array[] = [];
const receivedViews: Uint8Array[] = [];

/** Whether the MAC attribute of `macLength` bytes at `at` in `raw` is right under `key` (constant-time compare). */
function macMatches(algorithm: 'sha1' | 'sha256', key: Uint8Array, raw: Uint8Array, at: number, macLength: number): boolean {
  // The decoder admits 20 (SHA-1) or 16-32 (RFC 8489 §14.6); a message built by hand may claim anything, and an empty
  // compare would pass.
  if (macLength < 16 || macLength > 32 || at + 4 + macLength > raw.length) return false;
  const computed = (computedViews[macLength] ??= new Uint8Array(COMPUTED_SCRATCH, 0, macLength));
  const received = (receivedViews[macLength] ??= new Uint8Array(RECEIVED_SCRATCH, 0, macLength));
  for (let i = 0; i < macLength; i++) received[i] = raw[at + 4 + i]!;
  const length = at + 4 + macLength - HEADER_LENGTH;
  const hi = raw[2]!;
  const lo = raw[3]!;
  // A view made on the ArrayBuffer: ~16 ns, against ~30 for `subarray` (~50 on a Buffer, species constructor in JS).
  const buffer = raw.buffer;
  const input = new Uint8Array(buffer, raw.byteOffset, at);
  let written: number;
  if (hi === length >> 8 && lo === (length & 0xff)) {
    written = hmacInto(algorithm, key, input, computed, 0, macLength);
  } else if (buffer instanceof SharedArrayBuffer) {
    if (at > macInput.length) macInput = new Uint8Array(at);
    macInput.set(input);
    macInput[2] = length >> 8;
    macInput[3] = length & 0xff;
    written = hmacInto(algorithm, key, macInput.subarray(0, at), computed, 0, macLength);
  } else {
    raw[2] = length >> 8;
    raw[3] = length & 0xff;
    try {
      written = hmacInto(algorithm, key, input, computed, 0, macLength);
    } finally {
      raw[2] = hi;
      raw[3] = lo;
    }
  }
  // A provider's short MAC fills only part of the scratch, whose rest is stale: it must not be compared.
  return written === macLength && timingSafeEqual(received, computed);
}

/** Outcome of an integrity check. */
export type IntegrityResult = 'ok' | 'missing' | 'mismatch';

/**
 * Verifies MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with `key` (constant-time compare).
 * With `require: 'sha256'` a message that has only MESSAGE-INTEGRITY counts as missing. The MAC is computed over
 * `message.raw` itself: its Length field is patched for the duration of the (synchronous) HMAC call and restored
 * before this returns or throws, so callers see the bytes unchanged; a message in a `SharedArrayBuffer` is copied.
 */
export function verifyIntegrity(
  message: DecodedStunMessage,
  key: Uint8Array,
  require?: 'sha1' | 'sha256',
): IntegrityResult {
  const raw = message.raw;
  if (message.integritySha256Offset >= 0 && require !== 'sha1') {
    const off = message.integritySha256Offset;
    const len = (raw[off + 2]! << 8) | raw[off + 3]!;
    return macMatches('sha256', key, raw, off, len) ? 'ok' : 'mismatch';
  }
  if (message.integrityOffset >= 0 && require !== 'sha256') {
    return macMatches('sha1', key, raw, message.integrityOffset, 20) ? 'ok' : 'mismatch';
  }
  return 'missing';
}

/** How the encoder protects the message. */
export interface EncodeOptions {
  /** Key for MESSAGE-INTEGRITY (and/or -SHA256). */
  readonly integrityKey?: Uint8Array;
  /** Which integrity attributes to add with `integrityKey`. Default `'sha1'` (what ICE uses). */
  readonly integrity?: 'sha1' | 'sha256' | 'both';
  /** Truncate MESSAGE-INTEGRITY-SHA256 to this many bytes (16-32, multiple of 4). Default 32. */
  readonly sha256Length?: number;
  /** Append FINGERPRINT (ICE requires it, RFC 8445 §7.2.2). */
  readonly fingerprint?: boolean;
  /**
   * Byte written into attribute padding. RFC 8489 §14: padding "can be any value" and receivers ignore it, but it
   * is covered by MESSAGE-INTEGRITY and FINGERPRINT, so reproducing a captured message (e.g. RFC 5769 §2.1, which
   * pads with spaces) needs the same byte. Default 0.
   */
  readonly padding?: number;
}

/**
 * Encodes `message`, appending integrity and FINGERPRINT as asked. The result is a view into a shared slab (see
 * `byteOffset`); its bytes belong to this message alone.
 */
export function encodeStunMessage(message: StunMessage, options: EncodeOptions = {}): Uint8Array {
  if (message.transactionId.length !== 12) throw new RangeError('transaction ID must be 12 bytes');
  if (message.method < 0 || message.method > 0xfff) throw new RangeError('method must be 12 bits');
  const key = options.integrityKey;
  const which = options.integrity ?? 'sha1';
  const withSha1 = key !== undefined && which !== 'sha256';
  const withSha256 = key !== undefined && which !== 'sha1';
  const sha256Len = options.sha256Length ?? 32;
  const padByte = options.padding ?? 0;
  if (!Number.isInteger(padByte) || padByte < 0 || padByte > 0xff) throw new RangeError('padding must be a byte');
  if (withSha256 && (sha256Len < 16 || sha256Len > 32 || sha256Len % 4 !== 0)) {
    throw new RangeError('MESSAGE-INTEGRITY-SHA256 length must be 16..32 and a multiple of 4');
  }
  let size = HEADER_LENGTH;
  for (const a of message.attributes) {
    if (a.value.length > 0xffff) throw new RangeError(`attribute 0x${a.type.toString(16)} too long`);
    if (!Number.isInteger(a.type) || a.type < 0 || a.type > 0xffff) throw new RangeError('attribute type must be 16 bits');
    size += 4 + ((a.value.length + 3) & ~3);
  }
  const bodyEnd = size;
  if (withSha1) size += 24;
  if (withSha256) size += 4 + sha256Len;
  if (options.fingerprint) size += 8;
  if (size - HEADER_LENGTH > 0xffff) throw new RangeError('STUN message too long');

  const out = allocate(size);
  // The MAC and CRC inputs are prefixes of `out`, viewed on its ArrayBuffer (~16 ns a view; `subarray` ~30).
  const buffer = allocatedBuffer;
  const base = allocatedOffset;
  const mt = messageType(message.method, message.cls);
  out[0] = mt >> 8;
  out[1] = mt & 0xff;
  out[4] = 0x21;
  out[5] = 0x12;
  out[6] = 0xa4;
  out[7] = 0x42;
  const tid = message.transactionId;
  for (let i = 0; i < 12; i++) out[8 + i] = tid[i]!;
  let pos = HEADER_LENGTH;
  for (const a of message.attributes) {
    put16(out, pos, a.type);
    put16(out, pos + 2, a.value.length);
    const v = a.value;
    // Short values (the common case) are copied by hand: `set` has a high fixed cost.
    if (v.length <= 16) for (let i = 0; i < v.length; i++) out[pos + 4 + i] = v[i]!;
    else out.set(v, pos + 4);
    const next = pos + 4 + ((a.value.length + 3) & ~3);
    if (padByte !== 0) out.fill(padByte, pos + 4 + a.value.length, next);
    pos = next;
  }
  pos = bodyEnd;
  // Each protecting attribute is computed with the length field covering the message up to and including itself.
  if (withSha1) {
    put16(out, 2, pos + 24 - HEADER_LENGTH);
    hmacInto('sha1', key, new Uint8Array(buffer, base, pos), out, pos + 4, 20); // HMAC-SHA1 is 20 bytes, the attribute's size
    put16(out, pos, AttributeType.MESSAGE_INTEGRITY);
    put16(out, pos + 2, 20);
    pos += 24;
  }
  if (withSha256) {
    put16(out, 2, pos + 4 + sha256Len - HEADER_LENGTH);
    hmacInto('sha256', key, new Uint8Array(buffer, base, pos), out, pos + 4, sha256Len);
    put16(out, pos, AttributeType.MESSAGE_INTEGRITY_SHA256);
    put16(out, pos + 2, sha256Len);
    pos += 4 + sha256Len;
  }
  if (options.fingerprint) {
    put16(out, 2, pos + 8 - HEADER_LENGTH);
    const crc = fingerprintOf(new Uint8Array(buffer, base, pos));
    put16(out, pos, AttributeType.FINGERPRINT);
    put16(out, pos + 2, 4);
    put16(out, pos + 4, crc >>> 16);
    put16(out, pos + 6, crc & 0xffff);
    pos += 8;
  }
  put16(out, 2, size - HEADER_LENGTH);
  return out;
}

// Encoded messages are carved out of 16 KiB slabs: a fresh ArrayBuffer per message costs far more than encoding a
// small one (V8 allocates buffers over 64 bytes outside its heap). Each region is handed out once and a slab is
// never reused, so every byte starts zeroed (padding relies on that). A caller must therefore honour `byteOffset`
// when it reaches for `.buffer`, as with Node's pooled Buffers; a live message keeps its slab alive.
const SLAB_BYTES = 16 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;
// Where the last `allocate` put its bytes, so the encoder views them without reading `.buffer` back.
let allocatedBuffer: ArrayBuffer = slab;
let allocatedOffset = 0;
function allocate(size: number): Uint8Array {
  if (size > SLAB_BYTES / 8) {
    allocatedBuffer = new ArrayBuffer(size);
    allocatedOffset = 0;
    return new Uint8Array(allocatedBuffer);
  }
  if (slabUsed + size > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  allocatedBuffer = slab;
  allocatedOffset = slabUsed;
  slabUsed += (size + 7) & ~7;
  return new Uint8Array(slab, allocatedOffset, size);
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 8;
  b[at + 1] = v & 0xff;
}

/** The first attribute of `type`, or undefined. */
export function findAttribute(message: StunMessage, type: number): StunAttribute | undefined {
  for (const a of message.attributes) if (a.type === type) return a;
  return undefined;
}
