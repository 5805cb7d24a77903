/**
 * A sans-IO STUN Binding server (RFC 8489 §6.3, §6.3.1): answers Binding requests with XOR-MAPPED-ADDRESS, answers
 * 420 with UNKNOWN-ATTRIBUTES and 400 for malformed known attributes, and drops (and counts) everything else. It is
 * stateless per request (the Binding method is idempotent, RFC 8489 §6.3.1), so it has no timers.
 *
 * Amplification bound: a response never exceeds {@link MAX_BINDING_RESPONSE_BYTES} bytes whatever the request: it
 * carries at most XOR-MAPPED-ADDRESS (24 bytes for IPv6), ERROR-CODE with a fixed reason, an UNKNOWN-ATTRIBUTES list
 * capped at {@link MAX_UNKNOWN_ATTRIBUTES} entries, the configured SOFTWARE (capped at {@link MAX_SOFTWARE_BYTES}) and
 * FINGERPRINT. The smallest request that gets an answer is a 20-byte header, so the byte ratio is bounded by a
 * small constant and the packet ratio is 1.
 * @module
 */
import type { SansIoMachine } from '../machine.js';
import { parseIp } from '../ip.js';
import type { Datagram } from '../types.js';
import { attr, attributeCodec, Attr } from './attributes.js';
import { ErrorCode, StunMethod } from './constants.js';
import { encodeStunMessage, looksLikeStun, tryDecodeStunMessage, type StunAttribute } from './message.js';
import type { StunDecodeReason } from '../errors.js';

/** At most this many attribute types are listed in a 420 response (the rest are still rejected). */
export const MAX_UNKNOWN_ATTRIBUTES = 8;
/** Longest SOFTWARE value the server accepts in its options, in UTF-8 bytes. */
export const MAX_SOFTWARE_BYTES = 64;
/**
 * Largest response the server can emit, in bytes: header 20 + ERROR-CODE (4 + 4 + 20-byte reason) +
 * UNKNOWN-ATTRIBUTES (4 + 16) + SOFTWARE (4 + 64) + FINGERPRINT 8 = 144; a success response is at most
 * 20 + XOR-MAPPED-ADDRESS 24 + SOFTWARE 68 + FINGERPRINT 8 = 120.
 */
export const MAX_BINDING_RESPONSE_BYTES = 144;
/** Responses queued and not yet drained beyond this are dropped (`'queue-full'`). */
export const MAX_QUEUED_RESPONSES = 1024;

/** Why the server dropped a datagram without answering. */
export type BindingDropReason =
  | 'not-stun'
  | 'malformed'
  | 'fingerprint-mismatch'
  | 'indication'
  | 'response'
  | 'unsupported-method'
  | 'bad-source'
  | 'queue-full';

/** Counters of a {@link StunBindingServer}. A snapshot: later traffic does not change it. */
export interface StunBindingServerStats {
  /** Datagrams offered to `handleReceive`. */
  readonly received: number;
  /** Responses queued: success plus error responses. */
  readonly answered: number;
  readonly successResponses: number;
  /** 400 responses (a known comprehension-required attribute was malformed). */
  readonly badRequestResponses: number;
  /** 420 responses (unknown comprehension-required attributes). */
  readonly unknownAttributeResponses: number;
  /** Datagrams dropped, by reason. */
  readonly dropped: Readonly<Record<BindingDropReason, number>>;
  /** Decode failures (counted in `dropped.malformed` or `dropped['fingerprint-mismatch']`) by decoder reason. */
  readonly malformedByReason: Readonly<Partial<Record<StunDecodeReason, number>>>;
}

/** Options of {@link StunBindingServer}. */
export interface StunBindingServerOptions {
  /** SOFTWARE attribute to add to every response (RFC 8489 §6.3.1.1 SHOULD); at most 64 UTF-8 bytes. None by default. */
  readonly software?: string;
  /**
   * Add FINGERPRINT to every response, not only when the request had one. Default false: mirror the request
   * (RFC 8445 §7.2.2 / RFC 8489 §7: a FINGERPRINT-using usage sends it in both directions).
   */
  readonly alwaysFingerprint?: boolean;
}

/** The server emits no events; the type exists for the {@link SansIoMachine} contract. */
export type StunBindingServerEvent = never;

type MutableDrops = Record<BindingDropReason, number>;

/**
 * A sans-IO Binding server. Feed it datagrams with `handleReceive`; drain `pollTransmit` after each call. It never
 * throws on network input and never keeps per-client state.
 *
 * It is an unauthenticated server (no credential mechanism, RFC 8489 §9): MESSAGE-INTEGRITY(-SHA256) in a request
 * is neither checked nor answered, and USERNAME is never echoed. RFC 3489 clients (no magic cookie) are not served.
 */
export class StunBindingServer implements SansIoMachine<StunBindingServerEvent> {
  readonly #software: StunAttribute | undefined;
  readonly #alwaysFingerprint: boolean;
  readonly #queue: Datagram[] = [];
  #received = 0;
  #success = 0;
  #badRequest = 0;
  #unknownAttr = 0;
  readonly #dropped: MutableDrops = {
    'not-stun': 0,
    malformed: 0,
    'fingerprint-mismatch': 0,
    indication: 0,
    response: 0,
    'unsupported-method': 0,
    'bad-source': 0,
    'queue-full': 0,
  };
  readonly #malformedByReason: Partial<Record<StunDecodeReason, number>> = {};

  /** @throws RangeError when `software` is longer than {@link MAX_SOFTWARE_BYTES} bytes. */
  constructor(options: StunBindingServerOptions = {}) {
    if (options.software !== undefined) {
      const a = attr(Attr.SOFTWARE, options.software, new Uint8Array(12));
      if (a.value.length > MAX_SOFTWARE_BYTES) throw new RangeError(`software must be at most ${MAX_SOFTWARE_BYTES} bytes`);
      this.#software = a;
    }
    this.#alwaysFingerprint = options.alwaysFingerprint ?? false;
  }

  /**
   * Offers a datagram. Returns false (and counts `'not-stun'`) when it is not STUN at all, so a caller sharing the
   * socket may hand it to another protocol; true otherwise, whether answered or dropped. Drain `pollTransmit` after.
   */
  handleReceive(_now: number, datagram: Datagram): boolean {
    this.#received++;
    const data = datagram.data;
    if (!looksLikeStun(data)) {
      this.#dropped['not-stun']++;
      return false;
    }
    const r = tryDecodeStunMessage(data);
    if (!r.ok) {
      // RFC 8489 §6.3: a message breaking the rules of §5 (framing, FINGERPRINT) is silently discarded.
      this.#malformedByReason[r.reason] = (this.#malformedByReason[r.reason] ?? 0) + 1;
      this.#dropped[r.reason === 'fingerprint-mismatch' ? 'fingerprint-mismatch' : 'malformed']++;
      return true;
    }
    const m = r.message;
    if (m.cls === 'indication') {
      this.#dropped.indication++;
      return true;
    }
    if (m.cls !== 'request') {
      this.#dropped.response++;
      return true;
    }
    if (m.method !== StunMethod.Binding) {
      // RFC 8489 §6.3: "checks ... that the method value is a supported method"; failures are silently discarded.
      this.#dropped['unsupported-method']++;
      return true;
    }
    const source = unmapIpv4(datagram.remote);
    if (parseIp(source.address) === undefined || !Number.isInteger(source.port) || source.port < 0 || source.port > 0xffff) {
      // Only a broken IO layer (or a virtual network using names) hands in such a source; never throw for it.
      this.#dropped['bad-source']++;
      return true;
    }
    if (this.#queue.length >= MAX_QUEUED_RESPONSES) {
      this.#dropped['queue-full']++;
      return true;
    }

    // RFC 8489 §6.3.1: unknown comprehension-required attributes get a 420 listing them. A known one whose value
    // does not parse gets a 400 (§6.3.1.1 leaves the code to the checks that failed; 400 is "malformed").
    const unknown: number[] = [];
    let malformedKnown = false;
    for (const a of m.attributes) {
      if (a.type >= 0x8000) continue; // comprehension-optional: ignored when unknown or malformed (§6.3)
      const codec = attributeCodec(a.type);
      if (codec === undefined) {
        if (!unknown.includes(a.type) && unknown.length < MAX_UNKNOWN_ATTRIBUTES) unknown.push(a.type);
      } else if (codec.decode(a.value, m.transactionId) === undefined) {
        malformedKnown = true;
      }
    }

    const attributes: StunAttribute[] = [];
    let cls: 'success' | 'error';
    if (unknown.length > 0) {
      cls = 'error';
      attributes.push(
        attr(Attr.ERROR_CODE, { code: ErrorCode.UnknownAttribute, reason: 'Unknown Attribute' }, m.transactionId),
        attr(Attr.UNKNOWN_ATTRIBUTES, unknown, m.transactionId),
      );
      this.#unknownAttr++;
    } else if (malformedKnown) {
      cls = 'error';
      attributes.push(attr(Attr.ERROR_CODE, { code: ErrorCode.BadRequest, reason: 'Bad Request' }, m.transactionId));
      this.#badRequest++;
    } else {
      cls = 'success';
      // RFC 8489 §6.3.1.1: the source transport address of the request.
      attributes.push(attr(Attr.XOR_MAPPED_ADDRESS, source, m.transactionId));
      this.#success++;
    }
    if (this.#software) attributes.push(this.#software);
    const out = encodeStunMessage(
      { method: StunMethod.Binding, cls, transactionId: m.transactionId, attributes },
      { fingerprint: this.#alwaysFingerprint || m.hasFingerprint },
    );
    // RFC 8489 §6.3.1.2: back to the source, from the address the request arrived on, on the same transport.
    const response: Datagram =
      datagram.transport === undefined
        ? { local: datagram.local, remote: datagram.remote, data: out }
        : { local: datagram.local, remote: datagram.remote, data: out, transport: datagram.transport };
    this.#queue.push(response);
    return true;
  }

  /** No timers: nothing to do. */
  handleTimeout(_now: number): void {}

  /** Next response to send, in arrival order. */
  pollTransmit(): Datagram | undefined {
    return this.#queue.shift();
  }

  /** Always undefined: the server has no events. */
  pollEvent(): StunBindingServerEvent | undefined {
    return undefined;
  }

  /** Always undefined: the server has no timers. */
  pollTimeout(): number | undefined {
    return undefined;
  }

  /** A snapshot of the counters. */
  get stats(): StunBindingServerStats {
    return {
      received: this.#received,
      answered: this.#success + this.#badRequest + this.#unknownAttr,
      successResponses: this.#success,
      badRequestResponses: this.#badRequest,
      unknownAttributeResponses: this.#unknownAttr,
      dropped: { ...this.#dropped },
      malformedByReason: { ...this.#malformedByReason },
    };
  }
}

// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the client sent from an IPv4 address, so report that.
function unmapIpv4(a: Datagram['remote']): Datagram['remote'] {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a.address);
  return m ? { address: m[1]!, port: a.port } : a;
}

