/**
 * The long-term credential mechanism of the testing `TurnServer` (RFC 8489 §9.2.4): the nonce issued to each
 * client address, and the checks of an authenticated request in the order the RFC gives them.
 * @module
 */
import { attr, Attr, getAttribute } from '../stun/attributes.js';
import { ErrorCode } from '../stun/constants.js';
import { longTermKey } from '../stun/integrity.js';
import { verifyIntegrity, type DecodedStunMessage, type StunAttribute } from '../stun/message.js';
import { formatAddress, type RandomSource, type TransportAddress } from '../types.js';

/** Who sent an authenticated request; responses to it carry MESSAGE-INTEGRITY with `key`. */
export interface Auth {
  readonly username: string;
  readonly key: Uint8Array;
}

/** Answers the request being handled with an error response (signed when `auth` is given). */
export type Fail = (code: number, reason: string, extra?: StunAttribute[], auth?: Auth) => void;

/** The realm, the users and the nonces handed out. */
export class TurnCredentials {
  readonly #realm: string;
  readonly #users: Readonly<Record<string, string>>;
  readonly #random: RandomSource;
  readonly #nonceMs: number;
  readonly #nonces = new Map<string, { readonly nonce: string; readonly expiresMs: number }>();

  /** `random` is the server's source, so nonces are drawn in the same sequence as its other draws. */
  constructor(realm: string, users: Readonly<Record<string, string>>, random: RandomSource, nonceMs: number) {
    this.#realm = realm;
    this.#users = users;
    this.#random = random;
    this.#nonceMs = nonceMs;
  }

  /** Makes every issued nonce stale. */
  expireNonces(): void {
    this.#nonces.clear();
  }

  #nonceFor(now: number, client: TransportAddress): string {
    const k = formatAddress(client);
    const n = this.#nonces.get(k);
    if (n && n.expiresMs > now) return n.nonce;
    // RFC 8489 §9.2.4: never the same nonce for two different source addresses.
    const nonce = Buffer.from(this.#random.bytes(12)).toString('hex');
    this.#nonces.set(k, { nonce, expiresMs: now + this.#nonceMs });
    return nonce;
  }

  /** RFC 8489 §9.2.4, checks in the order the RFC gives. Returns the credentials, or undefined after `fail`. */
  authenticate(now: number, client: TransportAddress, m: DecodedStunMessage, fail: Fail): Auth | undefined {
    const challenge = (): StunAttribute[] => [
      attr(Attr.REALM, this.#realm, m.transactionId),
      attr(Attr.NONCE, this.#nonceFor(now, client), m.transactionId),
    ];
    if (m.integrityOffset < 0 && m.integritySha256Offset < 0) {
      fail(ErrorCode.Unauthorized, 'Unauthorized', challenge());
      return undefined;
    }
    const username = getAttribute(m, Attr.USERNAME);
    const realm = getAttribute(m, Attr.REALM);
    const nonce = getAttribute(m, Attr.NONCE);
    if (username === undefined || realm === undefined || nonce === undefined) {
      fail(ErrorCode.BadRequest, 'Bad Request');
      return undefined;
    }
    const password = Object.hasOwn(this.#users, username) ? this.#users[username] : undefined;
    if (password === undefined) {
      fail(ErrorCode.Unauthorized, 'Unauthorized', challenge());
      return undefined;
    }
    const k = longTermKey(username, this.#realm, password);
    if (verifyIntegrity(m, k) !== 'ok') {
      fail(ErrorCode.Unauthorized, 'Unauthorized', challenge());
      return undefined;
    }
    const auth: Auth = { username, key: k };
    const issued = this.#nonces.get(formatAddress(client));
    if (!issued || issued.nonce !== nonce || issued.expiresMs <= now) {
      // The 438 may carry integrity computed with the old nonce's key (§9.2.4 MAY); the key does not depend on it.
      fail(ErrorCode.StaleNonce, 'Stale Nonce', challenge(), auth);
      return undefined;
    }
    return auth;
  }
}
