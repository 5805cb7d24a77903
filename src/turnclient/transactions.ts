/**
 * The requests of a `TurnClient` and their transactions (RFC 8656 §5, on RFC 8489 §6.2 and §9.2): signing with the
 * long-term credential, retransmissions and time-outs, the checks every response must pass (§9.2.5 integrity and
 * bid-down, §6.3 unknown comprehension-required attributes) and the 401 / 438 retries. What an answer means for the
 * allocation (successes, 300, 420, 437, the other error codes) stays with `TurnClient`.
 * @module
 */
import type { PacerClient } from '../stun/pacing.js';
import { TurnError, type TurnErrorReason } from '../errors.js';
import { Attr, attr, attributeCodec, getAttribute, hasAttribute } from '../stun/attributes.js';
import { ErrorCode, StunMethod } from '../stun/constants.js';
import { encodeStunMessage, verifyIntegrity, type DecodedStunMessage, type EncodeOptions, type StunAttribute } from '../stun/message.js';
import { newTransactionId, TransactionTable, type TransactionTiming } from '../stun/transaction.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { formatAddress } from '../types.js';
import { TurnAttr } from './attributes.js';
import { credentialAttributes, nonceFeatures, readChallenge, type LongTermAuth } from './credentials.js';
import type { TurnClientStats, TurnOperation, TurnTransport } from './types.js';

/** At most this many consecutive 438 retries for one operation (a server that always says stale would loop). */
const MAX_STALE_RETRIES = 3;

/** One request in flight: what it is for, how to build it (again, on a retry) and its retry state. */
export interface Operation {
  readonly kind: TurnOperation;
  readonly build: (txid: Uint8Array) => StunAttribute[];
  readonly peer?: TransportAddress;
  readonly peerIp?: string;
  readonly channel?: number;
  authenticated: boolean;
  /** The credentials the request was signed with: its response is verified with the same key (RFC 8489 §9.2.5). */
  auth: LongTermAuth | undefined;
  unauthorizedRetries: number;
  staleRetries: number;
  integrityFailed: boolean;
  dropDontFragment: boolean;
}

/** What a new request is given; the rest of its {@link Operation} is fresh or carried over from the one it retries. */
export type OperationBase = Pick<Operation, 'kind' | 'build'> & Partial<Operation>;

const METHOD: Record<TurnOperation, number> = {
  allocate: StunMethod.Allocate,
  refresh: StunMethod.Refresh,
  deallocate: StunMethod.Refresh,
  permission: StunMethod.CreatePermission,
  channel: StunMethod.ChannelBind,
};

const REASON: Record<number, TurnErrorReason> = {
  300: 'try-alternate',
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  408: 'timeout',
  420: 'unknown-attribute',
  437: 'allocation-mismatch',
  438: 'stale-nonce',
  440: 'address-family-not-supported',
  441: 'wrong-credentials',
  442: 'unsupported-transport',
  443: 'peer-address-family-mismatch',
  486: 'quota-reached',
  500: 'server-error',
  508: 'insufficient-capacity',
};

/** The error an operation fails with when the server answers `code` and nothing more specific applies. */
export function errorResponseError(kind: TurnOperation, code: number, reason: string): TurnError {
  return new TurnError(code, REASON[code] ?? 'error-response', `${kind}: ${code} ${reason}`);
}

/** Attributes below 0x8000 (comprehension-required, RFC 8489 §14) that no codec is registered for. */
export function unknownRequired(m: DecodedStunMessage): StunAttribute[] {
  return m.attributes.filter((a) => a.type < 0x8000 && attributeCodec(a.type) === undefined);
}

/** Fixed settings of the requests. */
export interface TransactionConfig {
  readonly transport: TurnTransport;
  /** Already prepared (OpaqueString, RFC 8489 §14.3). */
  readonly username: string;
  readonly password: string;
  readonly random: RandomSource;
  readonly software: string | undefined;
  readonly fingerprint: boolean;
  readonly timing: TransactionTiming | undefined;
  /** The process-wide pacer's handle: an Allocate sent again (after 401, 438, 420 or 300) waits for a slot. */
  readonly pacer: PacerClient | undefined;
}

/** What the transactions need from the client they serve. */
export interface TransactionHost {
  /** The server now (it changes after a 300 redirect), for the time-out message. */
  server(): TransportAddress;
  /** Bytes for the server, on the current 5-tuple. */
  datagram(data: Uint8Array): Datagram;
  /** A success response passed the checks; its transaction is over. */
  succeeded(now: number, m: DecodedStunMessage, op: Operation): void;
  /** An error response passed the checks and is not a challenge answered here (401, 438). */
  errorResponse(now: number, m: DecodedStunMessage, op: Operation, code: number, reason: string): void;
  /** The operation failed: time-out, integrity, unknown attribute, or a challenge it may not answer again. */
  failed(now: number, op: Operation, error: TurnError): void;
  /** Whether a challenged operation (401, 438) may be sent again; no: it fails instead. */
  mayRetry(op: Operation): boolean;
}

/**
 * The transactions of one TurnClient. It shares the client's transmit queue (so requests and data leave in order)
 * and its counters. The credentials learnt from a challenge sign every later request (RFC 8489 §9.2.3.2).
 */
export class TurnTransactions {
  readonly #config: TransactionConfig;
  readonly #stats: TurnClientStats;
  readonly #transmits: Datagram[];
  readonly #host: TransactionHost;
  readonly #table = new TransactionTable<Operation>();
  #auth: LongTermAuth | undefined;
  /** An Allocate sent again, waiting for the pacer's slot. */
  #held: { readonly base: OperationBase; readonly carry: Operation } | undefined;

  constructor(config: TransactionConfig, stats: TurnClientStats, transmits: Datagram[], host: TransactionHost) {
    this.#config = config;
    this.#stats = stats;
    this.#transmits = transmits;
    this.#host = host;
  }

  /** A different server: its realm and nonce are unknown, so start again unauthenticated (RFC 8489 §9.2.3.1). */
  forgetCredentials(): void {
    this.#auth = undefined;
  }

  /**
   * Sends a request for `base`, signed when credentials are known; `carry` keeps retry counters across retries. An
   * Allocate sent again is a new gathering transaction (RFC 8445 §14.1): it waits for the process-wide pacer's slot
   * (§14.2), as the first one did through the gatherer.
   */
  request(now: number, base: OperationBase, carry?: Operation): void {
    const pacer = this.#config.pacer;
    if (base.kind === 'allocate' && carry !== undefined && pacer !== undefined && !pacer.request(now, 'ordinary')) {
      this.#held = { base, carry };
      return;
    }
    this.#send(now, base, carry);
  }

  #send(now: number, base: OperationBase, carry?: Operation): void {
    const op: Operation = {
      ...base,
      authenticated: false,
      auth: undefined,
      unauthorizedRetries: carry?.unauthorizedRetries ?? 0,
      staleRetries: carry?.staleRetries ?? 0,
      integrityFailed: false,
      dropDontFragment: base.dropDontFragment ?? carry?.dropDontFragment ?? false,
    };
    const c = this.#config;
    const txid = newTransactionId(c.random);
    const attributes = op.build(txid);
    if (c.software !== undefined && (op.kind === 'allocate' || op.kind === 'refresh' || op.kind === 'deallocate')) {
      attributes.push(attr(Attr.SOFTWARE, c.software, txid));
    }
    const options: { -readonly [K in keyof EncodeOptions]: EncodeOptions[K] } = { fingerprint: c.fingerprint };
    const auth = this.#auth;
    if (auth !== undefined) {
      attributes.push(...credentialAttributes(auth, c.username, txid));
      options.integrityKey = auth.key;
      options.integrity = auth.integrity;
      op.authenticated = true;
      op.auth = auth;
    }
    const data = encodeStunMessage({ method: METHOD[op.kind], cls: 'request', transactionId: txid, attributes }, options);
    this.#stats.requests++;
    const request = this.#host.datagram(data);
    this.#table.start(now, txid, request, op, c.timing);
    // An Allocate is a gathering transaction: its first send is paced process-wide (RFC 8445 §14.1, §14.2).
    this.#pump(now, op.kind === 'allocate' ? request : undefined);
  }

  /** Offers a decoded response; false when it answers none of our transactions. */
  handleResponse(now: number, m: DecodedStunMessage): boolean {
    const op = this.#table.peek(m.transactionId);
    if (op === undefined) return false;
    if (m.method !== METHOD[op.kind]) {
      // RFC 8489 §6.3.1.1: a response carries its request's method; anything else does not answer this transaction.
      this.#stats.malformed++;
      return true;
    }
    this.#onResponse(now, m, op);
    return true;
  }

  /** Runs the retransmissions and time-outs due at `now`. */
  handleTimeout(now: number): void {
    const held = this.#held;
    if (held !== undefined && this.#config.pacer!.request(now, 'ordinary')) {
      this.#held = undefined;
      this.#send(now, held.base, held.carry);
    }
    this.#table.handleTimeout(now);
    this.#pump(now);
  }

  /** Earliest retransmission or time-out, or the pacer's slot for a held Allocate; undefined when none. */
  pollTimeout(): number | undefined {
    const t = this.#table.pollTimeout();
    if (this.#held === undefined) return t;
    const slot = this.#config.pacer!.nextSlot() ?? -Infinity;
    return Math.min(t ?? Infinity, slot);
  }

  /** Abandons every transaction (no failures are reported), a held Allocate included. */
  cancelAll(): void {
    this.#table.cancelWhere(() => true);
    if (this.#held !== undefined) this.#config.pacer?.withdraw();
    this.#held = undefined;
  }

  // Moves retransmissions into the client's queue (keeping order) and turns transaction time-outs into failures.
  // `firstSend` goes out marked `paced`; retransmissions re-send the same object, so the mark is on a copy.
  #pump(now: number, firstSend?: Datagram): void {
    for (let d = this.#table.pollTransmit(); d; d = this.#table.pollTransmit()) {
      this.#transmits.push(d === firstSend ? { ...d, paced: true } : d);
    }
    for (let e = this.#table.pollEvent(); e; e = this.#table.pollEvent()) {
      const op = e.context;
      const err = op.integrityFailed
        ? new TurnError(0, 'integrity', `${op.kind}: only responses with bad integrity were received`)
        : new TurnError(408, 'timeout', `${op.kind}: no response from ${formatAddress(this.#host.server())}`);
      this.#host.failed(now, op, err);
    }
  }

  #onResponse(now: number, m: DecodedStunMessage, op: Operation): void {
    const errorCode = m.cls === 'error' ? getAttribute(m, Attr.ERROR_CODE) : undefined;
    if (m.cls === 'error' && errorCode === undefined) {
      this.#stats.malformed++;
      return;
    }
    const code = errorCode?.code;
    const signed = m.integrityOffset >= 0 || m.integritySha256Offset >= 0;
    if (code === ErrorCode.BadRequest && !signed) {
      // RFC 8489 §9.2.5: a 400 without integrity is discarded as if never received (retransmissions go on).
      this.#stats.unauthenticated++;
      return;
    }
    if (code !== ErrorCode.Unauthorized && code !== ErrorCode.StaleNonce) {
      // RFC 8489 §9.2.5: other responses whose NONCE has the cookie with the "password algorithms" bit but no
      // PASSWORD-ALGORITHMS attribute are ignored (a possible bid-down).
      const nonce = getAttribute(m, Attr.NONCE);
      if (nonce !== undefined && nonceFeatures(nonce)?.passwordAlgorithms && getAttribute(m, Attr.PASSWORD_ALGORITHMS) === undefined) {
        this.#stats.malformed++;
        return;
      }
    }
    if (op.auth !== undefined && code !== ErrorCode.Unauthorized && code !== ErrorCode.StaleNonce) {
      // RFC 8489 §9.2.5: a response to an authenticated request must verify with the key the request used;
      // otherwise discard it as if never received (UDP: retransmissions go on), or end the transaction at once on a
      // reliable transport.
      const ok = verifyIntegrity(m, op.auth.key, op.auth.integrity) === 'ok';
      if (!ok) {
        this.#stats.unauthenticated++;
        op.integrityFailed = true;
        if (this.#config.transport !== 'udp') {
          this.#table.take(m.transactionId);
          this.#host.failed(now, op, new TurnError(0, 'integrity', `${op.kind}: response failed integrity check`));
        }
        return;
      }
    }
    const unknown = unknownRequired(m);
    if (unknown.length > 0) {
      // RFC 8489 §6.3.3/§6.3.4: unknown comprehension-required attributes: discard the response, the transaction failed.
      this.#table.take(m.transactionId);
      const types = unknown.map((a) => `0x${a.type.toString(16).padStart(4, '0')}`).join(', ');
      this.#host.failed(now, op, new TurnError(0, 'unknown-attribute', `${op.kind}: response carries unknown comprehension-required attribute(s) ${types}`));
      return;
    }
    if (m.cls === 'success' && !this.#validSuccess(m, op)) {
      this.#stats.malformed++;
      return;
    }
    this.#table.take(m.transactionId);
    if (m.cls === 'success') {
      this.#host.succeeded(now, m, op);
      return;
    }
    this.#onErrorResponse(now, m, op, errorCode!.code, errorCode!.reason);
  }

  #validSuccess(m: DecodedStunMessage, op: Operation): boolean {
    // Present is enough here: an address the client cannot use is handled by `readAllocateSuccess` (RFC 8656 §7.3).
    if (op.kind === 'allocate') return hasAttribute(m, TurnAttr.XOR_RELAYED_ADDRESS);
    return true;
  }

  #onErrorResponse(now: number, m: DecodedStunMessage, op: Operation, code: number, reason: string): void {
    if (code === ErrorCode.Unauthorized) {
      // RFC 8489 §9.2.5: retry with credentials, but not again with the same username, realm and password.
      const ch = readChallenge(m, this.#config.username, this.#config.password, this.#auth);
      const realmChanged = ch.ok && this.#auth !== undefined && ch.auth.realm !== this.#auth.realm;
      if (ch.ok && (!op.authenticated || realmChanged) && op.unauthorizedRetries < 2) {
        this.#auth = ch.auth;
        op.unauthorizedRetries++;
        this.#stats.authRetries++;
        this.#retry(now, op);
        return;
      }
      const why = ch.ok ? 'credentials rejected' : ch.why;
      this.#host.failed(now, op, new TurnError(401, 'unauthorized', `${op.kind}: 401 ${reason} (${why})`));
      return;
    }
    if (code === ErrorCode.StaleNonce) {
      const ch = readChallenge(m, this.#config.username, this.#config.password, this.#auth);
      if (ch.ok && op.staleRetries < MAX_STALE_RETRIES) {
        this.#auth = ch.auth;
        op.staleRetries++;
        this.#stats.staleNonceRetries++;
        this.#retry(now, op);
        return;
      }
      this.#host.failed(now, op, new TurnError(438, 'stale-nonce', `${op.kind}: 438 ${reason}${ch.ok ? ' (repeated)' : ` (${ch.why})`}`));
      return;
    }
    this.#host.errorResponse(now, m, op, code, reason);
  }

  // The same request again, now signed: `build` (for an Allocate, with or without DONT-FRAGMENT) and the counters
  // come from the operation it retries.
  #retry(now: number, op: Operation): void {
    if (!this.#host.mayRetry(op)) {
      this.#host.failed(now, op, new TurnError(0, 'closed', `${op.kind}: not sent again, the client is closing`));
      return;
    }
    this.request(now, op, op);
  }

  /** Whether a transaction of `kind` is outstanding. */
  inflight(kind: Operation['kind']): boolean {
    return this.#table.some((op) => op.kind === kind);
  }
}
