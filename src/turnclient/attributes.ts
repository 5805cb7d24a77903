/**
 * TURN attributes (RFC 8656 §18), registered in the shared STUN attribute table so that the decoder knows them (420
 * checks, names in logs). Codecs never throw on wire input: a malformed value decodes to `undefined`.
 * @module
 */
import { addressAttribute, registerAttribute, type AttributeCodec } from '../stun/attributes.js';

/** TURN attribute type numbers (RFC 8656 §18, table 5). */
export const TurnAttributeType = {
  CHANNEL_NUMBER: 0x000c,
  LIFETIME: 0x000d,
  XOR_PEER_ADDRESS: 0x0012,
  DATA: 0x0013,
  XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_ADDRESS_FAMILY: 0x0017,
  EVEN_PORT: 0x0018,
  REQUESTED_TRANSPORT: 0x0019,
  DONT_FRAGMENT: 0x001a,
  RESERVATION_TOKEN: 0x0022,
  ADDITIONAL_ADDRESS_FAMILY: 0x8000,
  ADDRESS_ERROR_CODE: 0x8001,
  ICMP: 0x8004,
} as const;

/** Address family as carried by REQUESTED-ADDRESS-FAMILY (RFC 8489 §14.1 numbering: 0x01 IPv4, 0x02 IPv6). */
export type AddressFamily = 'ipv4' | 'ipv6';

/** IANA protocol number of UDP, the only REQUESTED-TRANSPORT RFC 8656 §18.8 allows. */
export const PROTOCOL_UDP = 17;

/** ADDRESS-ERROR-CODE value (RFC 8656 §18.12). */
export interface AddressErrorCodeValue {
  readonly family: AddressFamily;
  readonly code: number;
  readonly reason: string;
}

/** ICMP attribute value (RFC 8656 §18.13). */
export interface IcmpValue {
  readonly type: number;
  readonly code: number;
  readonly errorData: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

function u32Of(v: Uint8Array, at = 0): number {
  return ((v[at]! << 24) | (v[at + 1]! << 16) | (v[at + 2]! << 8) | v[at + 3]!) >>> 0;
}

function familyByte(f: AddressFamily): number {
  return f === 'ipv4' ? 0x01 : 0x02;
}

function familyOf(b: number | undefined): AddressFamily | undefined {
  return b === 0x01 ? 'ipv4' : b === 0x02 ? 'ipv6' : undefined;
}

function familyAttribute(type: number, name: string): AttributeCodec<AddressFamily> {
  return registerAttribute<AddressFamily>({
    type,
    name,
    decode: (v) => (v.length === 4 ? familyOf(v[0]) : undefined),
    // RFC 8656 §18.6: the 24 reserved bits are zero.
    encode: (f) => Uint8Array.of(familyByte(f), 0, 0, 0),
  });
}

/** The typed TURN attributes. */
export const TurnAttr = {
  /** RFC 8656 §18.1: 16-bit channel number then two zero bytes (RFFU, ignored on receipt). */
  CHANNEL_NUMBER: registerAttribute<number>({
    type: TurnAttributeType.CHANNEL_NUMBER,
    name: 'CHANNEL-NUMBER',
    decode: (v) => (v.length === 4 ? (v[0]! << 8) | v[1]! : undefined),
    encode: (n) => Uint8Array.of(n >> 8, n & 0xff, 0, 0),
  }),
  /** RFC 8656 §18.2: seconds, 32-bit unsigned. */
  LIFETIME: registerAttribute<number>({
    type: TurnAttributeType.LIFETIME,
    name: 'LIFETIME',
    decode: (v) => (v.length === 4 ? u32Of(v) : undefined),
    encode: (n) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff),
  }),
  XOR_PEER_ADDRESS: addressAttribute(TurnAttributeType.XOR_PEER_ADDRESS, 'XOR-PEER-ADDRESS', true),
  /** RFC 8656 §18.4: application data, any length including zero. */
  DATA: registerAttribute<Uint8Array>({
    type: TurnAttributeType.DATA,
    name: 'DATA',
    decode: (v) => v,
    encode: (v) => v,
  }),
  XOR_RELAYED_ADDRESS: addressAttribute(TurnAttributeType.XOR_RELAYED_ADDRESS, 'XOR-RELAYED-ADDRESS', true),
  REQUESTED_ADDRESS_FAMILY: familyAttribute(TurnAttributeType.REQUESTED_ADDRESS_FAMILY, 'REQUESTED-ADDRESS-FAMILY'),
  /** RFC 8656 §18.7: one byte, top bit R asks the server to reserve the next port. */
  EVEN_PORT: registerAttribute<{ readonly reserve: boolean }>({
    type: TurnAttributeType.EVEN_PORT,
    name: 'EVEN-PORT',
    decode: (v) => (v.length === 1 ? { reserve: (v[0]! & 0x80) !== 0 } : undefined),
    encode: ({ reserve }) => Uint8Array.of(reserve ? 0x80 : 0),
  }),
  /** RFC 8656 §18.8: protocol number then 24 zero bits. */
  REQUESTED_TRANSPORT: registerAttribute<number>({
    type: TurnAttributeType.REQUESTED_TRANSPORT,
    name: 'REQUESTED-TRANSPORT',
    decode: (v) => (v.length === 4 ? v[0]! : undefined),
    encode: (p) => Uint8Array.of(p & 0xff, 0, 0, 0),
  }),
  /** RFC 8656 §18.9: no value. */
  DONT_FRAGMENT: registerAttribute<true>({
    type: TurnAttributeType.DONT_FRAGMENT,
    name: 'DONT-FRAGMENT',
    decode: (v) => (v.length === 0 ? true : undefined),
    encode: () => new Uint8Array(0),
  }),
  /** RFC 8656 §18.10: an 8-byte token. */
  RESERVATION_TOKEN: registerAttribute<Uint8Array>({
    type: TurnAttributeType.RESERVATION_TOKEN,
    name: 'RESERVATION-TOKEN',
    decode: (v) => (v.length === 8 ? v : undefined),
    encode: (v) => {
      if (v.length !== 8) throw new RangeError('RESERVATION-TOKEN must be 8 bytes');
      return v;
    },
  }),
  /** RFC 8656 §18.11: same layout as REQUESTED-ADDRESS-FAMILY; only IPv6 is valid in a request. */
  ADDITIONAL_ADDRESS_FAMILY: familyAttribute(TurnAttributeType.ADDITIONAL_ADDRESS_FAMILY, 'ADDITIONAL-ADDRESS-FAMILY'),
  /** RFC 8656 §18.12: family, 13 reserved bits, class, number, reason phrase. */
  ADDRESS_ERROR_CODE: registerAttribute<AddressErrorCodeValue>({
    type: TurnAttributeType.ADDRESS_ERROR_CODE,
    name: 'ADDRESS-ERROR-CODE',
    decode(v) {
      if (v.length < 4 || v.length > 767) return undefined;
      const family = familyOf(v[0]);
      const cls = v[2]! & 0x07;
      const num = v[3]!;
      if (!family || cls < 3 || cls > 6 || num > 99) return undefined;
      try {
        return { family, code: cls * 100 + num, reason: utf8.decode(v.subarray(4)) };
      } catch {
        return undefined;
      }
    },
    encode({ family, code, reason }) {
      const r = encoder.encode(reason);
      const out = new Uint8Array(4 + r.length);
      out[0] = familyByte(family);
      out[2] = Math.floor(code / 100);
      out[3] = code % 100;
      out.set(r, 4);
      return out;
    },
  }),
  /** RFC 8656 §18.13: 2 reserved bytes, type, code, then 4 bytes of error data (the MTU for "too big"). */
  ICMP: registerAttribute<IcmpValue>({
    type: TurnAttributeType.ICMP,
    name: 'ICMP',
    decode: (v) => (v.length === 8 ? { type: v[2]!, code: v[3]!, errorData: u32Of(v, 4) } : undefined),
    encode: ({ type, code, errorData }) =>
      Uint8Array.of(0, 0, type, code, errorData >>> 24, (errorData >>> 16) & 0xff, (errorData >>> 8) & 0xff, errorData & 0xff),
  }),
} as const;
