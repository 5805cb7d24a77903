/**
 * Typed STUN attributes: an open table of codecs (RFC 8489 §14, RFC 8445 §7.1.1). The TURN client registers its own
 * codecs with `registerAttribute`. Codecs never throw on wire input: `decode` returns `undefined` for a malformed
 * value, so a reader treats a malformed attribute as absent.
 * @module
 */
import { formatIp, parseIp } from '../ip.js';
import type { TransportAddress } from '../types.js';
import { AttributeType, MAGIC_COOKIE } from './constants.js';
import type { StunAttribute, StunMessage } from './message.js';

/** Encodes and decodes one attribute's value. `transactionId` is needed by the XOR address attributes. */
export interface AttributeCodec<T> {
  readonly type: number;
  readonly name: string;
  decode(value: Uint8Array, transactionId: Uint8Array): T | undefined;
  encode(value: T, transactionId: Uint8Array): Uint8Array;
}

const registry = new Map<number, AttributeCodec<unknown>>();

/** Adds a codec to the table of known attributes (used for names and for the 420 unknown-attribute check). */
export function registerAttribute<T>(codec: AttributeCodec<T>): AttributeCodec<T> {
  registry.set(codec.type, codec as AttributeCodec<unknown>);
  return codec;
}

/** The codec registered for `type`, if any. */
export function attributeCodec(type: number): AttributeCodec<unknown> | undefined {
  return registry.get(type);
}

/** Every attribute type in the table (integrity and fingerprint included). */
export function knownAttributeTypes(): ReadonlySet<number> {
  return new Set([...registry.keys(), AttributeType.MESSAGE_INTEGRITY, AttributeType.MESSAGE_INTEGRITY_SHA256, AttributeType.FINGERPRINT]);
}

/** Decodes the first attribute matching `codec`, or `undefined` when absent or malformed. */
export function getAttribute<T>(message: StunMessage, codec: AttributeCodec<T>): T | undefined {
  for (const a of message.attributes) if (a.type === codec.type) return codec.decode(a.value, message.transactionId);
  return undefined;
}

/** True when an attribute of `codec.type` (or a raw type number) is present. */
export function hasAttribute(message: StunMessage, type: number | AttributeCodec<unknown>): boolean {
  const t = typeof type === 'number' ? type : type.type;
  return message.attributes.some((a) => a.type === t);
}

/** Builds a wire attribute from a typed value. */
export function attr<T>(codec: AttributeCodec<T>, value: T, transactionId: Uint8Array): StunAttribute {
  return { type: codec.type, value: codec.encode(value, transactionId) };
}

/**
 * Comprehension-required attribute types in `message` that are not in `known` (RFC 8489 §6.3.1: a server answers
 * 420 listing them; a client treats such a response as failed).
 */
export function unknownComprehensionRequired(message: StunMessage, known: ReadonlySet<number> = knownAttributeTypes()): number[] {
  // A Set, not `out.includes`: a 64 KiB datagram holds ~16k attributes, and a quadratic scan of them costs ~100 ms.
  const out = new Set<number>();
  for (const a of message.attributes) if (a.type < 0x8000 && !known.has(a.type)) out.add(a.type);
  return [...out];
}

// ---- value codecs -------------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/**
 * A UTF-8 text attribute. RFC 8489 §14.3, §14.8-§14.10, §14.14 give two limits: what a sender may produce
 * (`encodeMaxBytes`, and fewer than `maxChars` characters) and what a receiver must be able to parse
 * (`decodeMaxBytes`). Decoding is liberal (bytes only); encoding is strict.
 */
function text(type: number, name: string, encodeMaxBytes: number, decodeMaxBytes: number, maxChars = Infinity, asciiOnly = false): AttributeCodec<string> {
  return registerAttribute({
    type,
    name,
    decode(v) {
      if (v.length > decodeMaxBytes) return undefined;
      if (asciiOnly) {
        for (let i = 0; i < v.length; i++) if (v[i]! > 0x7f) return undefined;
      }
      try {
        return utf8.decode(v);
      } catch {
        return undefined;
      }
    },
    encode(s) {
      const b = utf8Bytes(s);
      if (b.length > encodeMaxBytes) throw new RangeError(`${name} is longer than ${encodeMaxBytes} bytes`);
      if (asciiOnly && b.length !== s.length) throw new RangeError(`${name} must be ASCII`);
      if (maxChars !== Infinity && countChars(s) >= maxChars) throw new RangeError(`${name} must be fewer than ${maxChars} characters`);
      return b;
    },
  });
}

// Unicode code points, not UTF-16 units (RFC 8489 counts characters).
function countChars(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function bytes(type: number, name: string, check: (v: Uint8Array) => boolean): AttributeCodec<Uint8Array> {
  return registerAttribute({
    type,
    name,
    decode: (v) => (check(v) ? v : undefined),
    encode: (v) => v,
  });
}

function read32(v: Uint8Array, at: number): number {
  return ((v[at]! << 24) | (v[at + 1]! << 16) | (v[at + 2]! << 8) | v[at + 3]!) >>> 0;
}

function write32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

// UTF-8 bytes of `s`. Short ASCII (usernames, ufrags) is copied by hand: TextEncoder always allocates off-heap.
// Four characters a step: a loop's own overhead costs as much as its character (~80 -> ~55 ns for a 25-byte
// USERNAME).
function utf8Bytes(s: string): Uint8Array {
  const n = s.length;
  if (n > 64) return encoder.encode(s);
  const out = new Uint8Array(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) > 0x7f) return encoder.encode(s);
    out[i] = c0;
    out[i + 1] = c1;
    out[i + 2] = c2;
    out[i + 3] = c3;
  }
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(s);
    out[i] = c;
  }
  return out;
}

function u32(type: number, name: string): AttributeCodec<number> {
  return registerAttribute({
    type,
    name,
    decode: (v) => (v.length === 4 ? read32(v, 0) : undefined),
    encode: (n) => {
      if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${name} must be a 32-bit unsigned integer`);
      // A sized array and byte writes: Uint8Array.of goes through a slower generic builtin.
      const out = new Uint8Array(4);
      write32(out, 0, n);
      return out;
    },
  });
}

const U64_BYTES = new Uint8Array(8);
const U64_VIEW = new DataView(U64_BYTES.buffer);

function u64(type: number, name: string): AttributeCodec<bigint> {
  return registerAttribute({
    type,
    name,
    decode: (v) => (v.length === 8 ? (BigInt(read32(v, 0)) << 32n) | BigInt(read32(v, 4)) : undefined),
    encode: (n) => {
      if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`${name} must be a 64-bit unsigned integer`);
      // Through a scratch DataView: splitting the BigInt with `>>` and `&` allocates two more BigInts. Not a DataView
      // on the result: touching `.buffer` of a small typed array forces V8 to move it off-heap.
      U64_VIEW.setBigUint64(0, n);
      const out = new Uint8Array(8);
      for (let i = 0; i < 8; i++) out[i] = U64_BYTES[i]!;
      return out;
    },
  });
}

// One shared empty value for every flag: `new Uint8Array(0)` costs as much as encoding a PRIORITY, and an empty
// array has no bytes a holder could change.
const EMPTY = new Uint8Array(0);

function flag(type: number, name: string): AttributeCodec<true> {
  return registerAttribute({ type, name, decode: (v) => (v.length === 0 ? true : undefined), encode: () => EMPTY });
}

/** Decodes the MAPPED-ADDRESS family/port/address layout, optionally XORed (RFC 8489 §14.1, §14.2). */
function decodeAddress(v: Uint8Array, xor: boolean, txid: Uint8Array): TransportAddress | undefined {
  if (v.length < 4) return undefined;
  const family = v[1];
  const len = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (len === 0 || v.length !== 4 + len) return undefined;
  let port = (v[2]! << 8) | v[3]!;
  const ip = v.slice(4, 4 + len);
  if (xor) {
    port ^= MAGIC_COOKIE >>> 16;
    const mask = xorMask(txid);
    for (let i = 0; i < len; i++) ip[i]! ^= mask[i]!;
  }
  return { address: formatIp(ip), port };
}

function encodeAddress(a: TransportAddress, xor: boolean, txid: Uint8Array): Uint8Array {
  const ip = parseIp(a.address);
  if (!ip) throw new RangeError(`not an IP address: ${a.address}`);
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 0xffff) throw new RangeError(`bad port: ${a.port}`);
  const out = new Uint8Array(4 + ip.length);
  out[1] = ip.length === 4 ? 0x01 : 0x02;
  const port = xor ? a.port ^ (MAGIC_COOKIE >>> 16) : a.port;
  out[2] = port >> 8;
  out[3] = port & 0xff;
  const mask = xor ? xorMask(txid) : undefined;
  for (let i = 0; i < ip.length; i++) out[4 + i] = mask ? ip[i]! ^ mask[i]! : ip[i]!;
  return out;
}

// Magic cookie followed by the transaction ID: the XOR key for addresses (RFC 8489 §14.2).
function xorMask(txid: Uint8Array): Uint8Array {
  const m = new Uint8Array(16);
  m[0] = 0x21;
  m[1] = 0x12;
  m[2] = 0xa4;
  m[3] = 0x42;
  m.set(txid.subarray(0, 12), 4);
  return m;
}

/** Builds a codec for an address attribute (MAPPED-ADDRESS layout), XORed or plain. TURN uses this too. */
export function addressAttribute(type: number, name: string, xor: boolean): AttributeCodec<TransportAddress> {
  return registerAttribute({
    type,
    name,
    decode: (v, txid) => decodeAddress(v, xor, txid),
    encode: (a, txid) => encodeAddress(a, xor, txid),
  });
}

/** ERROR-CODE value (RFC 8489 §14.8). */
export interface ErrorCodeValue {
  readonly code: number;
  readonly reason: string;
}

/** PASSWORD-ALGORITHM(S) entry (RFC 8489 §14.11-14.12). */
export interface PasswordAlgorithmValue {
  readonly algorithm: number;
  readonly parameters: Uint8Array;
}

function decodeAlgorithms(v: Uint8Array): PasswordAlgorithmValue[] | undefined {
  const out: PasswordAlgorithmValue[] = [];
  let pos = 0;
  while (pos < v.length) {
    if (pos + 4 > v.length) return undefined;
    const algorithm = (v[pos]! << 8) | v[pos + 1]!;
    const len = (v[pos + 2]! << 8) | v[pos + 3]!;
    const padded = (len + 3) & ~3;
    if (pos + 4 + len > v.length) return undefined;
    out.push({ algorithm, parameters: v.slice(pos + 4, pos + 4 + len) });
    pos += 4 + padded;
  }
  return out;
}

function encodeAlgorithms(list: readonly PasswordAlgorithmValue[]): Uint8Array {
  for (const a of list) {
    if (!Number.isInteger(a.algorithm) || a.algorithm < 0 || a.algorithm > 0xffff) throw new RangeError('password algorithm must be 16 bits');
    if (a.parameters.length > 0xffff) throw new RangeError('password algorithm parameters too long');
  }
  const size = list.reduce((n, a) => n + 4 + ((a.parameters.length + 3) & ~3), 0);
  const out = new Uint8Array(size);
  let pos = 0;
  for (const a of list) {
    out[pos] = a.algorithm >> 8;
    out[pos + 1] = a.algorithm & 0xff;
    out[pos + 2] = a.parameters.length >> 8;
    out[pos + 3] = a.parameters.length & 0xff;
    out.set(a.parameters, pos + 4);
    pos += 4 + ((a.parameters.length + 3) & ~3);
  }
  return out;
}

/** The typed attributes of STUN and ICE. */
export const Attr = {
  MAPPED_ADDRESS: addressAttribute(AttributeType.MAPPED_ADDRESS, 'MAPPED-ADDRESS', false),
  XOR_MAPPED_ADDRESS: addressAttribute(AttributeType.XOR_MAPPED_ADDRESS, 'XOR-MAPPED-ADDRESS', true),
  ALTERNATE_SERVER: addressAttribute(AttributeType.ALTERNATE_SERVER, 'ALTERNATE-SERVER', false),
  /** RFC 8489 §14.3: sent as fewer than 509 bytes; a receiver must parse up to 763. */
  USERNAME: text(AttributeType.USERNAME, 'USERNAME', 508, 763),
  USERHASH: bytes(AttributeType.USERHASH, 'USERHASH', (v) => v.length === 32),
  /**
   * RFC 8489 §14.9: fewer than 128 characters (up to 509 bytes when encoding, 763 when decoding). A client echoes the
   * server's REALM and NONCE (§9.2.3.2), so the encoder accepts anything the decoder accepts: a server's oversized
   * value must not make the client throw.
   */
  REALM: text(AttributeType.REALM, 'REALM', 763, 763),
  /** RFC 8489 §14.10: same limits and the same echo rule as REALM. */
  NONCE: text(AttributeType.NONCE, 'NONCE', 763, 763),
  /** RFC 8489 §14.14: same limits as REALM. */
  SOFTWARE: text(AttributeType.SOFTWARE, 'SOFTWARE', 509, 763, 128),
  /** RFC 8489 §14.16: a DNS name of 255 or fewer ASCII characters. */
  ALTERNATE_DOMAIN: text(AttributeType.ALTERNATE_DOMAIN, 'ALTERNATE-DOMAIN', 255, 255, Infinity, true),
  ERROR_CODE: registerAttribute<ErrorCodeValue>({
    type: AttributeType.ERROR_CODE,
    name: 'ERROR-CODE',
    decode(v) {
      if (v.length < 4 || v.length > 767) return undefined;
      const cls = v[2]! & 0x07;
      const num = v[3]!;
      if (cls < 3 || cls > 6 || num > 99) return undefined;
      try {
        return { code: cls * 100 + num, reason: utf8.decode(v.subarray(4)) };
      } catch {
        return undefined;
      }
    },
    encode({ code, reason }) {
      if (!Number.isInteger(code) || code < 300 || code > 699) throw new RangeError('ERROR-CODE must be 300..699');
      const r = encoder.encode(reason);
      // RFC 8489 §14.8: the reason phrase is fewer than 128 characters, at most 509 bytes when encoding.
      if (r.length > 509 || countChars(reason) >= 128) throw new RangeError('ERROR-CODE reason phrase too long');
      const out = new Uint8Array(4 + r.length);
      out[2] = Math.floor(code / 100);
      out[3] = code % 100;
      out.set(r, 4);
      return out;
    },
  }),
  UNKNOWN_ATTRIBUTES: registerAttribute<number[]>({
    type: AttributeType.UNKNOWN_ATTRIBUTES,
    name: 'UNKNOWN-ATTRIBUTES',
    decode(v) {
      if (v.length % 2 !== 0) return undefined;
      const out: number[] = [];
      for (let i = 0; i < v.length; i += 2) out.push((v[i]! << 8) | v[i + 1]!);
      return out;
    },
    encode(types) {
      for (const t of types) if (!Number.isInteger(t) || t < 0 || t > 0xffff) throw new RangeError('attribute type must be 16 bits');
      const out = new Uint8Array(types.length * 2);
      types.forEach((t, i) => {
        out[i * 2] = t >> 8;
        out[i * 2 + 1] = t & 0xff;
      });
      return out;
    },
  }),
  PASSWORD_ALGORITHM: registerAttribute<PasswordAlgorithmValue>({
    type: AttributeType.PASSWORD_ALGORITHM,
    name: 'PASSWORD-ALGORITHM',
    decode(v) {
      const list = decodeAlgorithms(v);
      return list && list.length === 1 ? list[0] : undefined;
    },
    encode: (a) => encodeAlgorithms([a]),
  }),
  PASSWORD_ALGORITHMS: registerAttribute<PasswordAlgorithmValue[]>({
    type: AttributeType.PASSWORD_ALGORITHMS,
    name: 'PASSWORD-ALGORITHMS',
    decode: decodeAlgorithms,
    encode: encodeAlgorithms,
  }),
  /** RFC 8445 §7.1.1: priority a peer-reflexive candidate from this check would get. */
  PRIORITY: u32(AttributeType.PRIORITY, 'PRIORITY'),
  USE_CANDIDATE: flag(AttributeType.USE_CANDIDATE, 'USE-CANDIDATE'),
  /** 64-bit tie-breaker (RFC 8445 §7.1.3). */
  ICE_CONTROLLED: u64(AttributeType.ICE_CONTROLLED, 'ICE-CONTROLLED'),
  ICE_CONTROLLING: u64(AttributeType.ICE_CONTROLLING, 'ICE-CONTROLLING'),
} as const;

/** A readable name for an attribute type (for logs and errors). */
export function attributeName(type: number): string {
  return registry.get(type)?.name ?? `0x${type.toString(16).padStart(4, '0')}`;
}
