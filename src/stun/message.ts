/**
 * STUN message codec (RFC 8489 §5, §14): header, attribute framing with 4-byte padding, MESSAGE-INTEGRITY(-SHA256)
 * and FINGERPRINT. Decoding never throws on the hot path: `tryDecodeStunMessage` returns a discriminated result;
 * `decodeStunMessage` wraps it and throws `StunDecodeError`.
 * @module
 */
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { StunDecodeError, type StunDecodeReason } from '../errors.js';
import { AttributeType, FINGERPRINT_XOR, HEADER_LENGTH, MAGIC_COOKIE } from './constants.js';
import { fingerprintOf } from './fingerprint.js';
import { hmac, macEquals } from './integrity.js';

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
 * Decodes a STUN message and checks FINGERPRINT when present. MESSAGE-INTEGRITY is not checked here (it needs a
 * key): call `verifyIntegrity`. Never throws.
 */
export function tryDecodeStunMessage(data: Uint8Array): StunDecodeResult {
  if (data.length < HEADER_LENGTH) return fail('short-header', data.length);
  if ((data[0]! & 0xc0) !== 0) return fail('not-stun', 0);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = view.getUint16(0);
  const length = view.getUint16(2);
  if (view.getUint32(4) !== MAGIC_COOKIE) return fail('bad-cookie', 4);
  if (length % 4 !== 0) return fail('bad-length', 2);
  if (HEADER_LENGTH + length > data.length) return fail('bad-length', 2);
  const end = HEADER_LENGTH + length;
  const attributes: StunAttribute[] = [];
  let integrityOffset = -1;
  let integritySha256Offset = -1;
  let hasFingerprint = false;
  let ignoredAttributes = 0;
  let pos = HEADER_LENGTH;
  while (pos < end) {
    if (pos + 4 > end) return fail('attribute-overrun', pos);
    const attrType = view.getUint16(pos);
    const attrLen = view.getUint16(pos + 2);
    const valueStart = pos + 4;
    const padded = (attrLen + 3) & ~3;
    if (valueStart + padded > end) return fail(valueStart + attrLen > end ? 'attribute-overrun' : 'bad-padding', pos);
    const value = data.subarray(valueStart, valueStart + attrLen);
    if (hasFingerprint) {
      ignoredAttributes++;
    } else if (attrType === AttributeType.FINGERPRINT) {
      if (attrLen !== 4) return fail('bad-attribute', pos);
      const expected = view.getUint32(valueStart);
      // The CRC covers the message up to this attribute, with the length field covering the FINGERPRINT itself.
      if (((crc32(data.subarray(4, pos), crc32(patchedHead(data, pos + 8 - HEADER_LENGTH))) ^ FINGERPRINT_XOR) >>> 0) !== expected) {
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
      attributes.push({ type: attrType, value });
    }
    pos = valueStart + padded;
  }
  const { method, cls } = splitType(type);
  return {
    ok: true,
    message: {
      method,
      cls,
      transactionId: data.subarray(8, 20),
      attributes,
      raw: data.subarray(0, end),
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
function patchedHead(raw: Uint8Array, length: number): Uint8Array {
  return Uint8Array.of(raw[0]!, raw[1]!, length >> 8, length & 0xff);
}

function macOver(algorithm: 'sha1' | 'sha256', key: Uint8Array, raw: Uint8Array, end: number, length: number) {
  return createHmac(algorithm, key).update(patchedHead(raw, length)).update(raw.subarray(4, end)).digest();
}

/** Outcome of an integrity check. */
export type IntegrityResult = 'ok' | 'missing' | 'mismatch';

/**
 * Verifies MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with `key` (constant-time compare).
 * With `require: 'sha256'` a message that has only MESSAGE-INTEGRITY counts as missing.
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
    const mac = macOver('sha256', key, raw, off, off + 4 + len - HEADER_LENGTH);
    return macEquals(raw.subarray(off + 4, off + 4 + len), mac) ? 'ok' : 'mismatch';
  }
  if (message.integrityOffset >= 0 && require !== 'sha256') {
    const off = message.integrityOffset;
    const mac = macOver('sha1', key, raw, off, off + 24 - HEADER_LENGTH);
    return macEquals(raw.subarray(off + 4, off + 24), mac) ? 'ok' : 'mismatch';
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
}

/** Encodes `message`, appending integrity and FINGERPRINT as asked, into one freshly allocated buffer. */
export function encodeStunMessage(message: StunMessage, options: EncodeOptions = {}): Uint8Array {
  if (message.transactionId.length !== 12) throw new RangeError('transaction ID must be 12 bytes');
  if (message.method < 0 || message.method > 0xfff) throw new RangeError('method must be 12 bits');
  const key = options.integrityKey;
  const which = options.integrity ?? 'sha1';
  const withSha1 = key !== undefined && which !== 'sha256';
  const withSha256 = key !== undefined && which !== 'sha1';
  const sha256Len = options.sha256Length ?? 32;
  if (withSha256 && (sha256Len < 16 || sha256Len > 32 || sha256Len % 4 !== 0)) {
    throw new RangeError('MESSAGE-INTEGRITY-SHA256 length must be 16..32 and a multiple of 4');
  }
  let size = HEADER_LENGTH;
  for (const a of message.attributes) {
    if (a.value.length > 0xffff) throw new RangeError(`attribute 0x${a.type.toString(16)} too long`);
    size += 4 + ((a.value.length + 3) & ~3);
  }
  const bodyEnd = size;
  if (withSha1) size += 24;
  if (withSha256) size += 4 + sha256Len;
  if (options.fingerprint) size += 8;
  if (size - HEADER_LENGTH > 0xffff) throw new RangeError('STUN message too long');

  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint16(0, messageType(message.method, message.cls));
  view.setUint32(4, MAGIC_COOKIE);
  out.set(message.transactionId, 8);
  let pos = HEADER_LENGTH;
  for (const a of message.attributes) {
    view.setUint16(pos, a.type);
    view.setUint16(pos + 2, a.value.length);
    out.set(a.value, pos + 4);
    pos += 4 + ((a.value.length + 3) & ~3);
  }
  pos = bodyEnd;
  // Each protecting attribute is computed with the length field covering the message up to and including itself.
  if (withSha1) {
    view.setUint16(2, pos + 24 - HEADER_LENGTH);
    const mac = hmac('sha1', key, out.subarray(0, pos));
    view.setUint16(pos, AttributeType.MESSAGE_INTEGRITY);
    view.setUint16(pos + 2, 20);
    out.set(mac, pos + 4);
    pos += 24;
  }
  if (withSha256) {
    view.setUint16(2, pos + 4 + sha256Len - HEADER_LENGTH);
    const mac = hmac('sha256', key, out.subarray(0, pos));
    view.setUint16(pos, AttributeType.MESSAGE_INTEGRITY_SHA256);
    view.setUint16(pos + 2, sha256Len);
    out.set(mac.subarray(0, sha256Len), pos + 4);
    pos += 4 + sha256Len;
  }
  if (options.fingerprint) {
    view.setUint16(2, pos + 8 - HEADER_LENGTH);
    const crc = fingerprintOf(out.subarray(0, pos));
    view.setUint16(pos, AttributeType.FINGERPRINT);
    view.setUint16(pos + 2, 4);
    view.setUint32(pos + 4, crc);
    pos += 8;
  }
  view.setUint16(2, size - HEADER_LENGTH);
  return out;
}

/** The first attribute of `type`, or undefined. */
export function findAttribute(message: StunMessage, type: number): StunAttribute | undefined {
  for (const a of message.attributes) if (a.type === type) return a;
  return undefined;
}
