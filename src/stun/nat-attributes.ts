/**
 * The attributes of STUN NAT behaviour discovery (RFC 5780 §7). OTHER-ADDRESS and RESPONSE-ORIGIN use the
 * MAPPED-ADDRESS layout (§7.1) and are registered like any other attribute (they are comprehension-optional).
 * CHANGE-REQUEST is comprehension-required and deliberately NOT registered: only a server that can answer from a
 * second address understands it, so every other usage (ICE checks, TURN) keeps rejecting it with 420 (RFC 5780 §6).
 * RESPONSE-PORT and PADDING are not implemented: a server answering them would redirect responses to another port
 * or pad them to the MTU, which the binding server's no-amplification rule forbids. Both stay unknown (420).
 * @module
 */
import { addressAttribute, type AttributeCodec } from './attributes.js';
import { AttributeType } from './constants.js';

/** CHANGE-REQUEST flags (RFC 5780 §7.2): A is "change IP" (0x4 in the last byte), B is "change port" (0x2). */
export interface ChangeRequestValue {
  readonly changeIp: boolean;
  readonly changePort: boolean;
}

const CHANGE_IP = 0x04;
const CHANGE_PORT = 0x02;

/** The codec of CHANGE-REQUEST. Decoding reads the two flags and ignores the other (reserved) bits. */
export const CHANGE_REQUEST: AttributeCodec<ChangeRequestValue> = {
  type: AttributeType.CHANGE_REQUEST,
  name: 'CHANGE-REQUEST',
  decode: (v) => (v.length === 4 ? { changeIp: (v[3]! & CHANGE_IP) !== 0, changePort: (v[3]! & CHANGE_PORT) !== 0 } : undefined),
  encode: (c) => Uint8Array.of(0, 0, 0, (c.changeIp ? CHANGE_IP : 0) | (c.changePort ? CHANGE_PORT : 0)),
};

/** The typed attributes of RFC 5780. */
export const NatAttr = {
  /** §7.4: the address and port the server would answer from with both change flags set. */
  OTHER_ADDRESS: addressAttribute(AttributeType.OTHER_ADDRESS, 'OTHER-ADDRESS', false),
  /** §7.3: the address and port this response was sent from. */
  RESPONSE_ORIGIN: addressAttribute(AttributeType.RESPONSE_ORIGIN, 'RESPONSE-ORIGIN', false),
  CHANGE_REQUEST,
} as const;
