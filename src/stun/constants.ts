/**
 * STUN numbers from RFC 8489 §18, plus the ICE (RFC 8445 §16) attributes. TURN registers its own in
 * `src/turnclient/`.
 * @module
 */

/** The magic cookie (RFC 8489 §5). */
export const MAGIC_COOKIE = 0x2112a442;
/** FINGERPRINT is CRC-32 XOR this value (RFC 8489 §14.7). */
export const FINGERPRINT_XOR = 0x5354554e;
/** Size of the STUN header in bytes. */
export const HEADER_LENGTH = 20;

/** STUN methods. */
export const StunMethod = {
  Binding: 0x001,
  Allocate: 0x003,
  Refresh: 0x004,
  Send: 0x006,
  Data: 0x007,
  CreatePermission: 0x008,
  ChannelBind: 0x009,
} as const;

/** Attribute types (RFC 8489 §18.3, RFC 8445 §16.1). Below 0x8000 is comprehension-required. */
export const AttributeType = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  PASSWORD_ALGORITHM: 0x001d,
  USERHASH: 0x001e,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  PASSWORD_ALGORITHMS: 0x8002,
  ALTERNATE_DOMAIN: 0x8003,
  SOFTWARE: 0x8022,
  ALTERNATE_SERVER: 0x8023,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
  // RFC 5780 §7 (NAT behaviour discovery).
  CHANGE_REQUEST: 0x0003,
  PADDING: 0x0026,
  RESPONSE_PORT: 0x0027,
  RESPONSE_ORIGIN: 0x802b,
  OTHER_ADDRESS: 0x802c,
} as const;

/** PASSWORD-ALGORITHM numbers (RFC 8489 §18.5). */
export const PasswordAlgorithm = { MD5: 0x0001, SHA256: 0x0002 } as const;

/** Error codes used by STUN, ICE and TURN, with the reason phrases the RFCs suggest. */
export const ErrorCode = {
  TryAlternate: 300,
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  UnknownAttribute: 420,
  AllocationMismatch: 437,
  StaleNonce: 438,
  AddressFamilyNotSupported: 440,
  WrongCredentials: 441,
  UnsupportedTransportProtocol: 442,
  PeerAddressFamilyMismatch: 443,
  AllocationQuotaReached: 486,
  RoleConflict: 487,
  ServerError: 500,
  InsufficientCapacity: 508,
} as const;

/** Comprehension-required attributes are 0x0000-0x7FFF (RFC 8489 §14). */
export function isComprehensionRequired(type: number): boolean {
  return type < 0x8000;
}
