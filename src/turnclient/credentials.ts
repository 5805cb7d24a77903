/**
 * Client side of the STUN long-term credential mechanism as TURN uses it (RFC 8489 §9.2, RFC 8656 §5-6): learning
 * realm, nonce and password algorithm from a 401/438 challenge, the nonce cookie (§9.2.1), and the attributes and
 * key an authenticated request carries.
 * @module
 */
import { Attr, attr, getAttribute, type PasswordAlgorithmValue } from '../stun/attributes.js';
import { PasswordAlgorithm } from '../stun/constants.js';
import { longTermKey, prepareCredential, userHash } from '../stun/integrity.js';
import type { StunAttribute, StunMessage } from '../stun/message.js';

/** RFC 8489 §9.2: a nonce starting with this, then 4 base64 characters of the 24 security feature bits. */
export const NONCE_COOKIE = 'obMatJos2';

/** The STUN Security Features announced in a nonce cookie (RFC 8489 §18.1: bit 0 is the leftmost bit). */
export interface NonceFeatures {
  readonly passwordAlgorithms: boolean;
  readonly usernameAnonymity: boolean;
}

/** The features of a nonce that carries the cookie, or undefined when it does not. */
export function nonceFeatures(nonce: string): NonceFeatures | undefined {
  if (nonce.length < NONCE_COOKIE.length + 4 || !nonce.startsWith(NONCE_COOKIE)) return undefined;
  const b = Buffer.from(nonce.slice(NONCE_COOKIE.length, NONCE_COOKIE.length + 4), 'base64');
  if (b.length < 3) return undefined;
  return { passwordAlgorithms: (b[0]! & 0x80) !== 0, usernameAnonymity: (b[0]! & 0x40) !== 0 };
}

/** Encodes security features as the 13-character nonce cookie (used by scripted servers in tests). */
export function nonceCookie(features: NonceFeatures): string {
  const b0 = (features.passwordAlgorithms ? 0x80 : 0) | (features.usernameAnonymity ? 0x40 : 0);
  return NONCE_COOKIE + Buffer.from([b0, 0, 0]).toString('base64');
}

/** What the client knows after a challenge: enough to sign requests. */
export interface LongTermAuth {
  readonly realm: string;
  readonly nonce: string;
  /** The PASSWORD-ALGORITHMS list from the server, echoed verbatim in every request; undefined if not offered. */
  readonly algorithms: readonly PasswordAlgorithmValue[] | undefined;
  /** The PASSWORD-ALGORITHM chosen (MD5 when the server offered no list). */
  readonly algorithm: number;
  /** Integrity attribute to use: MESSAGE-INTEGRITY-SHA256 only once the server offered PASSWORD-ALGORITHMS. */
  readonly integrity: 'sha1' | 'sha256';
  /** Send USERHASH instead of USERNAME (nonce cookie "username anonymity"). */
  readonly useUserHash: boolean;
  readonly key: Uint8Array;
}

/** Outcome of reading a 401/438 challenge. */
export type ChallengeResult =
  | { readonly ok: true; readonly auth: LongTermAuth }
  | { readonly ok: false; readonly why: string };

/**
 * Builds the credentials for a retry from a 401 or 438 response (RFC 8489 §9.2.5). `previous` supplies realm and
 * algorithms a 438 may leave out. Refuses (no retry) when the cookie announces PASSWORD-ALGORITHMS but the
 * attribute is missing, or when no offered algorithm is supported.
 */
export function readChallenge(
  response: StunMessage,
  username: string,
  password: string,
  previous: LongTermAuth | undefined,
): ChallengeResult {
  const nonce = getAttribute(response, Attr.NONCE);
  const realm = getAttribute(response, Attr.REALM) ?? previous?.realm;
  if (nonce === undefined || realm === undefined) return { ok: false, why: 'challenge without REALM and NONCE' };
  const offered = getAttribute(response, Attr.PASSWORD_ALGORITHMS) ?? previous?.algorithms;
  const features = nonceFeatures(nonce);
  if (features?.passwordAlgorithms && getAttribute(response, Attr.PASSWORD_ALGORITHMS) === undefined) {
    // RFC 8489 §9.2.5: a possible bid-down attack; the client MUST NOT retry.
    return { ok: false, why: 'nonce cookie announces PASSWORD-ALGORITHMS but the attribute is missing' };
  }
  let algorithm: number = PasswordAlgorithm.MD5;
  if (offered !== undefined) {
    // RFC 8656 §6: when both MD5 and SHA-256 are offered the request MUST use SHA-256 (this overrides RFC 8489's
    // "first supported"); otherwise the first supported one.
    const supported = offered.filter((a) => a.algorithm === PasswordAlgorithm.MD5 || a.algorithm === PasswordAlgorithm.SHA256);
    if (supported.length === 0) return { ok: false, why: 'no supported password algorithm offered' };
    algorithm = supported.some((a) => a.algorithm === PasswordAlgorithm.SHA256) ? PasswordAlgorithm.SHA256 : supported[0]!.algorithm;
  }
  return {
    ok: true,
    auth: {
      realm,
      nonce,
      algorithms: offered,
      algorithm,
      integrity: offered !== undefined ? 'sha256' : 'sha1',
      useUserHash: features?.usernameAnonymity ?? false,
      key: longTermKey(username, realm, password, algorithm),
    },
  };
}

/** The credential attributes of an authenticated request (RFC 8489 §9.2.3.2), before the integrity attribute. */
export function credentialAttributes(auth: LongTermAuth, username: string, transactionId: Uint8Array): StunAttribute[] {
  const out: StunAttribute[] = [
    auth.useUserHash
      ? attr(Attr.USERHASH, userHash(username, auth.realm), transactionId)
      : attr(Attr.USERNAME, username, transactionId),
    attr(Attr.REALM, auth.realm, transactionId),
    attr(Attr.NONCE, auth.nonce, transactionId),
  ];
  if (auth.algorithms !== undefined) {
    out.push(attr(Attr.PASSWORD_ALGORITHMS, [...auth.algorithms], transactionId));
    out.push(attr(Attr.PASSWORD_ALGORITHM, { algorithm: auth.algorithm, parameters: new Uint8Array(0) }, transactionId));
  }
  return out;
}

/** OpaqueString-prepared username (RFC 8489 §14.3), as it goes into USERNAME and the key. */
export function prepareUsername(username: string): string {
  return prepareCredential(username);
}
