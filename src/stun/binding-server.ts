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
 *
 * NAT behaviour discovery (RFC 5780 §6), when given a second address and port (`rfc5780`): every success response
 * also carries MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS, and CHANGE-REQUEST picks the address it is sent
 * from (Table 1 of §6.1), always to the request's source. Without them, CHANGE-REQUEST gets a 420 (§6). RESPONSE-PORT
 * and PADDING are not served (420): they would send to another port or pad to the MTU, against the rule above. A
 * success response then grows to at most {@link MAX_RFC5780_RESPONSE_BYTES} bytes, still one packet per request.
 * @module
 */
import type { SansIoMachine } from '../machine.js';
import { canonicalIp, ipFamily, parseIp } from '../ip.js';
import type { Datagram, TransportAddress } from '../types.js';
import { attr, attributeCodec, Attr, getAttribute } from './attributes.js';
import { AttributeType, ErrorCode, StunMethod } from './constants.js';
import { NatAttr } from './nat-attributes.js';
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
/**
 * Largest response of a server with `rfc5780` set: 20 + XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN and
 * OTHER-ADDRESS (24 each for IPv6) + SOFTWARE 68 + FINGERPRINT 8 = 192. Error responses stay within 144.
 */
export const MAX_RFC5780_RESPONSE_BYTES = 192;
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
  /** Success responses sent from another address or port than the request arrived on (RFC 5780 CHANGE-REQUEST). */
  readonly changedOriginResponses: number;
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
  /**
   * Serve NAT behaviour discovery (RFC 5780): the server's two addresses A1/A2 and two ports P1/P2. The machine must
   * receive on all four combinations (A1:P1, A1:P2, A2:P1, A2:P2) and its owner must send each response from its
   * `local`, which may be any of them. A request arriving elsewhere is answered as by a plain server.
   */
  readonly rfc5780?: StunBindingServerRfc5780;
}

/** The second address and port of an RFC 5780 server (§6: same ports on both addresses). */
export interface StunBindingServerRfc5780 {
  /** A1:P1, where clients are told to send (any of the four works). */
  readonly primary: TransportAddress;
  /** A2:P2: a different IP address of the same family, and a different port. */
  readonly alternate: TransportAddress;
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
  readonly #rfc5780: { readonly ips: readonly [string, string]; readonly ports: readonly [number, number] } | undefined;
  readonly #queue: Datagram[] = [];
  #received = 0;
  #success = 0;
  #badRequest = 0;
  #unknownAttr = 0;
  #changedOrigin = 0;
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

  /**
   * @throws RangeError when `software` is longer than {@link MAX_SOFTWARE_BYTES} bytes, or when `rfc5780` does not
   * give two IP literals of one family and two different ports in 1-65535.
   */
  constructor(options: StunBindingServerOptions = {}) {
    if (options.software !== undefined) {
      const a = attr(Attr.SOFTWARE, options.software, new Uint8Array(12));
      if (a.value.length > MAX_SOFTWARE_BYTES) throw new RangeError(`software must be at most ${MAX_SOFTWARE_BYTES} bytes`);
      this.#software = a;
    }
    this.#alwaysFingerprint = options.alwaysFingerprint ?? false;
    const r = options.rfc5780;
    if (r !== undefined) {
      const [a1, a2] = [r.primary.address, r.alternate.address];
      const family = ipFamily(a1);
      if (family === 0 || ipFamily(a2) !== family) throw new RangeError('rfc5780 needs two IP addresses of one family');
      if (canonicalIp(a1) === canonicalIp(a2)) throw new RangeError('rfc5780 needs two different IP addresses');
      for (const p of [r.primary.port, r.alternate.port]) {
        if (!Number.isInteger(p) || p < 1 || p > 0xffff) throw new RangeError(`rfc5780 port ${p} is not in 1-65535`);
      }
      if (r.primary.port === r.alternate.port) throw new RangeError('rfc5780 needs two different ports');
      this.#rfc5780 = { ips: [canonicalIp(a1), canonicalIp(a2)], ports: [r.primary.port, r.alternate.port] };
    }
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
    // RFC 5780 §6: only a server that can answer from its other address and port understands CHANGE-REQUEST.
    const other = datagram.transport === undefined || datagram.transport === 'udp' ? this.#otherOf(datagram.local) : undefined;
    for (const a of m.attributes) {
      if (a.type >= 0x8000) continue; // comprehension-optional: ignored when unknown or malformed (§6.3)
      const codec = a.type === AttributeType.CHANGE_REQUEST ? (other ? NatAttr.CHANGE_REQUEST : undefined) : attributeCodec(a.type);
      if (codec === undefined) {
        if (!unknown.includes(a.type) && unknown.length < MAX_UNKNOWN_ATTRIBUTES) unknown.push(a.type);
      } else if (codec.decode(a.value, m.transactionId) === undefined) {
        malformedKnown = true;
      }
    }

    const attributes: StunAttribute[] = [];
    let cls: 'success' | 'error';
    let from = datagram.local;
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
      if (other) {
        // RFC 5780 §6.1 Table 1: change IP -> Ca, change port -> Cp; OTHER-ADDRESS is Ca:Cp whatever the flags.
        const change = getAttribute(m, NatAttr.CHANGE_REQUEST);
        from = {
          address: change?.changeIp ? other.address : datagram.local.address,
          port: change?.changePort ? other.port : datagram.local.port,
        };
        if (from.address !== datagram.local.address || from.port !== datagram.local.port) this.#changedOrigin++;
        attributes.push(
          attr(Attr.MAPPED_ADDRESS, source, m.transactionId), // §6.1: MUST carry both mapped addresses
          attr(NatAttr.RESPONSE_ORIGIN, from, m.transactionId),
          attr(NatAttr.OTHER_ADDRESS, other, m.transactionId),
        );
      }
    }
    if (this.#software) attributes.push(this.#software);
    const out = encodeStunMessage(
      { method: StunMethod.Binding, cls, transactionId: m.transactionId, attributes },
      { fingerprint: this.#alwaysFingerprint || m.hasFingerprint },
    );
    // RFC 8489 §6.3.1.2: back to the source, from the address the request arrived on (or the one CHANGE-REQUEST
    // picked, RFC 5780 §6.1), on the same transport.
    const response: Datagram =
      datagram.transport === undefined
        ? { local: from, remote: datagram.remote, data: out }
        : { local: from, remote: datagram.remote, data: out, transport: datagram.transport };
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
      changedOriginResponses: this.#changedOrigin,
      dropped: { ...this.#dropped },
      malformedByReason: { ...this.#malformedByReason },
    };
  }

  // Ca:Cp for a request that arrived on Da:Dp (RFC 5780 §6.1), or undefined when RFC 5780 is off, the request came
  // over a stream (§6: CHANGE-REQUEST is UDP-only here) or it arrived on an address the server was not given.
  #otherOf(local: TransportAddress): TransportAddress | undefined {
    const r = this.#rfc5780;
    if (r === undefined || ipFamily(local.address) === 0) return undefined;
    const ip = r.ips.indexOf(canonicalIp(local.address));
    const port = r.ports.indexOf(local.port);
    if (ip < 0 || port < 0) return undefined;
    return { address: r.ips[1 - ip]!, port: r.ports[1 - port]! };
  }
}

// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the client sent from an IPv4 address, so report that.
function unmapIpv4(a: Datagram['remote']): Datagram['remote'] {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a.address);
  return m ? { address: m[1]!, port: a.port } : a;
}

