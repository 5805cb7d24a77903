/**
 * Building and reading ICE connectivity-check messages (RFC 8445 §7.1, §7.2.2, §7.3, §11) on top of the STUN codec.
 * @module
 */
import type { DecodedStunMessage } from '../stun/message.js';
import { encodeStunMessage } from '../stun/message.js';
import { Attr, attr, getAttribute, hasAttribute } from '../stun/attributes.js';
import { AttributeType, StunMethod } from '../stun/constants.js';
import type { TransportAddress } from '../types.js';

/**
 * Largest Binding message the agent decodes. RFC 8489 §6.1 keeps STUN over UDP under the path MTU (576 bytes for
 * IPv4 when unknown); a check with the longest ufrags (2 x 256) and a few extensions stays well under 2 KB.
 */
export const MAX_CHECK_MESSAGE_BYTES = 2048;

/** Type preference of peer-reflexive candidates (RFC 8445 §5.1.2.2), used in PRIORITY (§7.1.1). */
export const PRFLX_TYPE_PREFERENCE = 110;

/** RFC 8445 §7.1.1: the local candidate's priority recomputed with the peer-reflexive type preference. */
export function prflxPriority(localPriority: number): number {
  // priority = 2^24*type + 2^8*local + (256 - component); keep the low 24 bits, replace the type preference.
  return (PRFLX_TYPE_PREFERENCE * 2 ** 24 + (localPriority & 0xffffff)) >>> 0;
}

/** What a check request carries. */
export interface CheckRequest {
  readonly transactionId: Uint8Array;
  /** `remoteUfrag:localUfrag` (RFC 8445 §7.2.2). */
  readonly username: string;
  readonly priority: number;
  readonly role: 'controlling' | 'controlled';
  readonly tieBreaker: bigint;
  readonly useCandidate: boolean;
  /** The remote password (RFC 8445 §7.2.2), prepared as a short-term key. */
  readonly key: Uint8Array;
}

/** Encodes a Binding request for a check or a consent check, with MESSAGE-INTEGRITY and FINGERPRINT. */
export function encodeCheckRequest(r: CheckRequest): Uint8Array {
  const id = r.transactionId;
  const attributes = [
    attr(Attr.USERNAME, r.username, id),
    attr(Attr.PRIORITY, r.priority, id),
    r.role === 'controlling' ? attr(Attr.ICE_CONTROLLING, r.tieBreaker, id) : attr(Attr.ICE_CONTROLLED, r.tieBreaker, id),
  ];
  if (r.useCandidate) attributes.push(attr(Attr.USE_CANDIDATE, true, id));
  return encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: id, attributes }, { integrityKey: r.key, fingerprint: true });
}

/** Encodes a Binding success response with XOR-MAPPED-ADDRESS, protected with the local password (§7.3). */
export function encodeCheckSuccess(transactionId: Uint8Array, mapped: TransportAddress, key: Uint8Array): Uint8Array {
  return encodeStunMessage(
    { method: StunMethod.Binding, cls: 'success', transactionId, attributes: [attr(Attr.XOR_MAPPED_ADDRESS, mapped, transactionId)] },
    { integrityKey: key, fingerprint: true },
  );
}

/**
 * Encodes a Binding error response. 400/401 carry no MESSAGE-INTEGRITY (the request could not be authenticated,
 * RFC 8489 §9.1.3); 487 does (`key` given).
 */
export function encodeCheckError(transactionId: Uint8Array, code: number, reason: string, key?: Uint8Array, unknown?: readonly number[]): Uint8Array {
  const attributes = [attr(Attr.ERROR_CODE, { code, reason }, transactionId)];
  if (unknown && unknown.length > 0) attributes.push(attr(Attr.UNKNOWN_ATTRIBUTES, [...unknown], transactionId));
  return encodeStunMessage(
    { method: StunMethod.Binding, cls: 'error', transactionId, attributes },
    key ? { integrityKey: key, fingerprint: true } : { fingerprint: true },
  );
}

/** A Binding indication keepalive (RFC 8445 §11): no authentication, FINGERPRINT only. */
export function encodeKeepalive(transactionId: Uint8Array): Uint8Array {
  return encodeStunMessage({ method: StunMethod.Binding, cls: 'indication', transactionId, attributes: [] }, { fingerprint: true });
}

/** The ICE attributes of a received request (undefined fields: absent or malformed). */
export interface ParsedCheck {
  readonly username: string | undefined;
  readonly priority: number | undefined;
  readonly controlling: bigint | undefined;
  readonly controlled: bigint | undefined;
  readonly useCandidate: boolean;
}

/** Reads USERNAME, PRIORITY, ICE-CONTROLLING/ICE-CONTROLLED and USE-CANDIDATE. */
export function parseCheck(m: DecodedStunMessage): ParsedCheck {
  return {
    username: getAttribute(m, Attr.USERNAME),
    priority: getAttribute(m, Attr.PRIORITY),
    controlling: getAttribute(m, Attr.ICE_CONTROLLING),
    controlled: getAttribute(m, Attr.ICE_CONTROLLED),
    useCandidate: hasAttribute(m, AttributeType.USE_CANDIDATE),
  };
}

/** The ERROR-CODE of a response, or undefined. */
export function errorCodeOf(m: DecodedStunMessage): number | undefined {
  return getAttribute(m, Attr.ERROR_CODE)?.code;
}

