/**
 * A minimal sans-IO TURN server (RFC 8656 over UDP) for the virtual network and for testing TURN clients.
 * `addTurnServer` (`turn-host.ts`) puts one on a virtual host.
 *
 * Supported: Allocate with the long-term credential mechanism (RFC 8489 §9.2.4: 401 with REALM and NONCE, MD5 key,
 * MESSAGE-INTEGRITY checked, 438 for a stale nonce, 441 for a different username on an allocation), REQUESTED-TRANSPORT
 * (400/442), REQUESTED-ADDRESS-FAMILY (440), ADDITIONAL-ADDRESS-FAMILY (dual allocation when the server has relay
 * addresses of both families, else ADDRESS-ERROR-CODE), EVEN-PORT with and without reservation, RESERVATION-TOKEN,
 * LIFETIME, Refresh (0 deletes), CreatePermission (300 s per peer IP), ChannelBind (600 s; also installs the
 * permission), Send indication to peer, peer datagram to Data indication or ChannelData, ChannelData to peer,
 * retransmitted Allocate answered again (RFC 8656 §7.2 note), Binding requests on the listening address (answered by
 * `StunBindingServer`).
 * Not supported: TCP/TLS transports and TCP relaying (RFC 6062), DONT-FRAGMENT (answered 420 as RFC 8656 §7.2 step 4
 * asks), PASSWORD-ALGORITHMS / SHA-256 keys (the nonce carries no security-feature cookie, so clients use MD5 and
 * MESSAGE-INTEGRITY), ICMP, 300 Try Alternate, bandwidth quotas.
 * The credential checks are in `turn-auth.ts`, the exported constants and types in `turn-server-types.ts`.
 * @module
 */
import { attr, Attr, getAttribute, hasAttribute, knownAttributeTypes, unknownComprehensionRequired } from '../stun/attributes.js';
import { StunBindingServer } from '../stun/binding-server.js';
import { ErrorCode, StunMethod } from '../stun/constants.js';
import {
  encodeStunMessage,
  looksLikeStun,
  tryDecodeStunMessage,
  type DecodedStunMessage,
  type StunAttribute,
} from '../stun/message.js';
import { transactionKey } from '../stun/transaction.js';
import { decodeChannelData, encodeChannelData, isValidChannel, looksLikeChannelData } from '../turnclient/channel-data.js';
import { PROTOCOL_UDP, TurnAttr, TurnAttributeType, type AddressFamily } from '../turnclient/attributes.js';
import { canonicalIp, ipFamily } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { TurnCredentials, type Auth, type Fail } from './turn-auth.js';
import {
  TURN_CHANNEL_LIFETIME_SEC,
  TURN_DEFAULT_LIFETIME_SEC,
  TURN_MAX_LIFETIME_SEC,
  TURN_PERMISSION_LIFETIME_SEC,
  TURN_RESERVATION_LIFETIME_MS,
  type TurnAllocationInfo,
  type TurnServerDropReason,
  type TurnServerEvent,
  type TurnServerOptions,
  type TurnServerStats,
} from './turn-server-types.js';

// The constants and types have a file of their own; re-exported so `icewire/testing` and this module keep them.
export * from './turn-server-types.js';

interface Allocation {
  readonly client: TransportAddress;
  readonly server: TransportAddress;
  readonly relayed: readonly TransportAddress[];
  readonly username: string;
  readonly key: Uint8Array;
  readonly transactionId: string;
  readonly reservationToken: Uint8Array | undefined;
  expiresMs: number;
  readonly permissions: Map<string, number>;
  readonly channels: Map<number, { readonly peer: TransportAddress; expiresMs: number }>;
  readonly channelByPeer: Map<string, number>;
}

/** Answers the request being handled (the response is signed when `auth` is given). */
type Reply = (cls: 'success' | 'error', attributes: StunAttribute[], auth?: Auth) => void;

const key = (a: TransportAddress): string => `${a.address}|${a.port}`;
const familyOfIp = (ip: string): AddressFamily | undefined => {
  const f = ipFamily(ip);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
};

// Attributes this server understands in requests: the shared table minus DONT-FRAGMENT, which the TURN client
// registers but this server cannot honour (it cannot set DF), so RFC 8656 §7.2 step 4 and §11.2 say to treat it as
// unknown.
function supportedAttributes(): ReadonlySet<number> {
  const s = new Set(knownAttributeTypes());
  s.delete(TurnAttributeType.DONT_FRAGMENT);
  return s;
}

/**
 * A sans-IO TURN server (UDP). Drain `pollTransmit` and `pollEvent` after each input and call `handleTimeout` at
 * `pollTimeout` (the earliest allocation expiry). Never throws on network input: bad datagrams are dropped and
 * counted in `stats`.
 */
export class TurnServer implements SansIoMachine<TurnServerEvent> {
  readonly #listen: readonly TransportAddress[];
  readonly #relayIps: ReadonlyMap<AddressFamily, string>;
  readonly #random: RandomSource;
  readonly #defaultLifetimeSec: number;
  readonly #maxLifetimeSec: number;
  readonly #permissionMs: number;
  readonly #channelMs: number;
  readonly #minPort: number;
  readonly #maxPort: number;
  readonly #maxPerUser: number;
  readonly #software: string;
  readonly #binding: StunBindingServer | undefined;
  readonly #allocations = new Map<string, Allocation>();
  readonly #byRelay = new Map<string, Allocation>();
  readonly #reservations = new Map<string, { readonly relayed: TransportAddress; readonly expiresMs: number }>();
  readonly #credentials: TurnCredentials;
  readonly #transmits: Datagram[] = [];
  readonly #events: TurnServerEvent[] = [];
  #requests = 0;
  #success = 0;
  #toPeer = 0;
  #toClient = 0;
  readonly #errors: Record<number, number> = {};
  readonly #dropped: Partial<Record<TurnServerDropReason, number>> = {};

  /** Throws `RangeError` on inconsistent options (no listening address, bad port range, no relay IP). */
  constructor(options: TurnServerOptions) {
    const listen = Array.isArray(options.listen) ? options.listen : [options.listen as TransportAddress];
    if (listen.length === 0) throw new RangeError('TurnServer needs at least one listening address');
    this.#listen = listen.map((a) => ({ address: canonicalIp(a.address), port: a.port }));
    const relayIps = new Map<AddressFamily, string>();
    for (const ip of options.relayIps ?? this.#listen.map((a) => a.address)) {
      const f = familyOfIp(ip);
      if (!f) throw new RangeError(`relay IP is not an IP address: ${ip}`);
      if (!relayIps.has(f)) relayIps.set(f, canonicalIp(ip));
    }
    this.#relayIps = relayIps;
    this.#random = options.random;
    this.#credentials = new TurnCredentials(options.realm, options.users, options.random, options.nonceLifetimeMs ?? 3_600_000);
    this.#defaultLifetimeSec = options.defaultLifetimeSec ?? TURN_DEFAULT_LIFETIME_SEC;
    this.#maxLifetimeSec = options.maxLifetimeSec ?? TURN_MAX_LIFETIME_SEC;
    this.#permissionMs = (options.permissionLifetimeSec ?? TURN_PERMISSION_LIFETIME_SEC) * 1000;
    this.#channelMs = (options.channelLifetimeSec ?? TURN_CHANNEL_LIFETIME_SEC) * 1000;
    const [min, max] = options.relayPortRange ?? [49152, 65535];
    if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max <= 65535 && min <= max)) {
      throw new RangeError(`bad relay port range ${min}-${max}`);
    }
    this.#minPort = min;
    this.#maxPort = max;
    this.#maxPerUser = options.maxAllocationsPerUser ?? Infinity;
    this.#software = options.software ?? 'icewire-testing';
    this.#binding = options.answerBinding === false ? undefined : new StunBindingServer({ software: this.#software });
  }

  /** The client-facing addresses. */
  get listen(): readonly TransportAddress[] {
    return this.#listen;
  }

  /**
   * Offers a datagram. Returns true for anything addressed to a listening address or to a live relayed address
   * (answered, relayed, or dropped and counted), false otherwise.
   */
  handleReceive(now: number, datagram: Datagram): boolean {
    if (datagram.transport !== undefined && datagram.transport !== 'udp') return false;
    const local = { address: canonicalIp(datagram.local.address), port: datagram.local.port };
    const remote = { address: canonicalIp(datagram.remote.address), port: datagram.remote.port };
    if (this.#listen.some((l) => l.address === local.address && l.port === local.port)) {
      this.#fromClient(now, local, remote, datagram);
      return true;
    }
    const alloc = this.#byRelay.get(key(local));
    if (!alloc || alloc.expiresMs <= now) return false;
    this.#fromPeer(now, alloc, local, remote, datagram.data);
    return true;
  }

  /** Deletes allocations whose lifetime has run out (and reservations past their hold time). */
  handleTimeout(now: number): void {
    for (const a of [...this.#allocations.values()]) {
      if (a.expiresMs <= now) this.#delete(a, 'expired');
    }
    for (const [t, r] of this.#reservations) if (r.expiresMs <= now) this.#reservations.delete(t);
  }

  /** Next datagram to send: responses and Data/ChannelData from the listening address, relayed data from a relayed one. */
  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  /** Next allocation, permission or channel event. */
  pollEvent(): TurnServerEvent | undefined {
    return this.#events.shift();
  }

  /** The earliest allocation expiry. Permissions and channels expire lazily (checked when used). */
  pollTimeout(): number | undefined {
    let min: number | undefined;
    for (const a of this.#allocations.values()) if (min === undefined || a.expiresMs < min) min = a.expiresMs;
    for (const r of this.#reservations.values()) if (min === undefined || r.expiresMs < min) min = r.expiresMs;
    return min;
  }

  /** Makes every issued nonce stale: the next authenticated request of each client gets 438 (RFC 8489 §9.2.4). */
  expireNonces(): void {
    this.#credentials.expireNonces();
  }

  /** Live allocations (for assertions). */
  allocations(now: number): TurnAllocationInfo[] {
    return [...this.#allocations.values()]
      .filter((a) => a.expiresMs > now)
      .map((a) => ({
        client: a.client,
        server: a.server,
        relayed: a.relayed,
        username: a.username,
        expiresMs: a.expiresMs,
        permissions: [...a.permissions].filter(([, t]) => t > now).map(([ip]) => ip),
        channels: [...a.channels].filter(([, c]) => c.expiresMs > now).map(([channel, c]) => ({ channel, peer: c.peer })),
      }));
  }

  /** A snapshot of the counters. */
  get stats(): TurnServerStats {
    return {
      requests: this.#requests,
      successResponses: this.#success,
      errorResponses: { ...this.#errors },
      toPeer: this.#toPeer,
      toClient: this.#toClient,
      dropped: { ...this.#dropped },
    };
  }

  // ---- client side ----

  #drop(reason: TurnServerDropReason): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + 1;
  }

  #fromClient(now: number, local: TransportAddress, remote: TransportAddress, datagram: Datagram): void {
    const data = datagram.data;
    const alloc = this.#allocations.get(`${key(remote)}>${key(local)}`);
    const live = alloc && alloc.expiresMs > now ? alloc : undefined;
    if (looksLikeChannelData(data)) {
      // RFC 8656 §12.6 (server side): relay to the bound peer; never refreshes the binding or the permission.
      const cd = decodeChannelData(data);
      if (!cd) return this.#drop('malformed');
      // RFC 8656 §5: no allocation on this 5-tuple, a ChannelData message is silently ignored.
      if (!live) return this.#drop('no-allocation');
      const ch = live.channels.get(cd.channel);
      if (!ch || ch.expiresMs <= now) return this.#drop('no-channel');
      return this.#relayToPeer(live, ch.peer, cd.data);
    }
    if (!looksLikeStun(data)) return this.#drop('not-turn');
    const r = tryDecodeStunMessage(data);
    if (!r.ok) return this.#drop('malformed');
    const m = r.message;
    if (m.cls === 'success' || m.cls === 'error') return this.#drop('response');
    if (m.method === StunMethod.Binding) {
      if (!this.#binding) return this.#drop('unsupported-method');
      this.#binding.handleReceive(now, datagram);
      for (let d = this.#binding.pollTransmit(); d; d = this.#binding.pollTransmit()) this.#transmits.push(d);
      return;
    }
    if (m.cls === 'indication') {
      if (m.method !== StunMethod.Send) return this.#drop('unsupported-method');
      if (!live) return this.#drop('no-allocation');
      return this.#handleSend(now, live, m);
    }
    this.#requests++;
    const reply: Reply = (cls, attributes, auth) => {
      this.#respond(local, remote, m, cls, attributes, auth);
    };
    const fail: Fail = (code, reason, extra = [], auth) => {
      this.#errors[code] = (this.#errors[code] ?? 0) + 1;
      reply('error', [attr(Attr.ERROR_CODE, { code, reason }, m.transactionId), ...extra], auth);
    };

    const known = [StunMethod.Allocate, StunMethod.Refresh, StunMethod.CreatePermission, StunMethod.ChannelBind] as number[];
    // RFC 8489 §6.3: a request for an unknown method gets 400.
    if (!known.includes(m.method)) return fail(ErrorCode.BadRequest, 'Bad Request');
    // RFC 8489 §6.3.1: unknown comprehension-required attributes are answered with 420 before authentication.
    const unknown = unknownComprehensionRequired(m, supportedAttributes());
    if (unknown.length > 0) {
      return fail(ErrorCode.UnknownAttribute, 'Unknown Attribute', [attr(Attr.UNKNOWN_ATTRIBUTES, unknown.slice(0, 16), m.transactionId)]);
    }
    const auth = this.#credentials.authenticate(now, remote, m, fail);
    if (!auth) return;
    if (m.method === StunMethod.Allocate) return this.#handleAllocate(now, local, remote, m, auth, reply, fail);
    // RFC 8656 §5: other requests need an allocation on this 5-tuple (437) created by the same username (441).
    if (!live) return fail(ErrorCode.AllocationMismatch, 'Allocation Mismatch', [], auth);
    if (live.username !== auth.username) return fail(ErrorCode.WrongCredentials, 'Wrong Credentials', [], auth);
    switch (m.method) {
      case StunMethod.Refresh:
        return this.#handleRefresh(now, live, m, auth, reply, fail);
      case StunMethod.CreatePermission:
        return this.#handleCreatePermission(now, live, m, auth, reply, fail);
      default:
        return this.#handleChannelBind(now, live, m, auth, reply, fail);
    }
  }

  #respond(
    local: TransportAddress,
    remote: TransportAddress,
    request: DecodedStunMessage,
    cls: 'success' | 'error',
    attributes: StunAttribute[],
    auth: Auth | undefined,
  ): void {
    if (cls === 'success') this.#success++;
    const m = request.method;
    const all =
      m === StunMethod.Allocate || m === StunMethod.Refresh
        ? [...attributes, attr(Attr.SOFTWARE, this.#software, request.transactionId)]
        : attributes;
    const data = encodeStunMessage(
      { method: m, cls, transactionId: request.transactionId, attributes: all },
      {
        // RFC 8489 §9.2.4: responses to an authenticated request carry MESSAGE-INTEGRITY (MD5 key, no SHA-256 here).
        ...(auth ? { integrityKey: auth.key, integrity: 'sha1' as const } : {}),
        fingerprint: request.hasFingerprint,
      },
    );
    this.#transmits.push({ local, remote, data });
  }

  #handleAllocate(
    now: number,
    local: TransportAddress,
    remote: TransportAddress,
    m: DecodedStunMessage,
    auth: Auth,
    reply: Reply,
    fail: Fail,
  ): void {
    const tx = m.transactionId;
    const existing = this.#allocations.get(`${key(remote)}>${key(local)}`);
    if (existing && existing.expiresMs > now) {
      // RFC 8656 §7.2 note: a retransmission of the request that created the allocation gets the success again.
      if (existing.transactionId === transactionKey(tx)) return reply('success', this.#allocateSuccess(now, existing, tx, []), auth);
      return fail(ErrorCode.AllocationMismatch, 'Allocation Mismatch', [], auth);
    }
    if (existing) this.#delete(existing, 'expired');
    const transport = getAttribute(m, TurnAttr.REQUESTED_TRANSPORT);
    if (transport === undefined) return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    if (transport !== PROTOCOL_UDP) return fail(ErrorCode.UnsupportedTransportProtocol, 'Unsupported Transport Protocol', [], auth);
    const token = hasAttribute(m, TurnAttr.RESERVATION_TOKEN) ? getAttribute(m, TurnAttr.RESERVATION_TOKEN) : undefined;
    const evenPort = hasAttribute(m, TurnAttr.EVEN_PORT) ? getAttribute(m, TurnAttr.EVEN_PORT) : undefined;
    const requested = hasAttribute(m, TurnAttr.REQUESTED_ADDRESS_FAMILY) ? getAttribute(m, TurnAttr.REQUESTED_ADDRESS_FAMILY) : undefined;
    const additional = hasAttribute(m, TurnAttr.ADDITIONAL_ADDRESS_FAMILY) ? getAttribute(m, TurnAttr.ADDITIONAL_ADDRESS_FAMILY) : undefined;
    const malformed = (codec: { type: number }, value: unknown): boolean => hasAttribute(m, codec.type) && value === undefined;
    if (
      malformed(TurnAttr.RESERVATION_TOKEN, token) ||
      malformed(TurnAttr.EVEN_PORT, evenPort) ||
      malformed(TurnAttr.REQUESTED_ADDRESS_FAMILY, requested) ||
      malformed(TurnAttr.ADDITIONAL_ADDRESS_FAMILY, additional)
    ) {
      return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    }
    // Step 5: a token excludes EVEN-PORT and the family attributes.
    if (token && (evenPort || requested || additional)) return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    // Step 6.
    if (requested && additional) return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    // Step 9 (first half): ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6.
    if (additional === 'ipv4') return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    // Step 8: a reservation cannot be combined with a dual allocation.
    if (evenPort?.reserve && additional) return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    let quota = 0;
    for (const a of this.#allocations.values()) if (a.username === auth.username && a.expiresMs > now) quota++;
    if (quota >= this.#maxPerUser) return fail(ErrorCode.AllocationQuotaReached, 'Allocation Quota Reached', [], auth);

    const relayed: TransportAddress[] = [];
    const extra: StunAttribute[] = [];
    let reservation: Uint8Array | undefined;
    if (token) {
      const hex = Buffer.from(token).toString('hex');
      const r = this.#reservations.get(hex);
      if (!r || r.expiresMs <= now || this.#byRelay.has(key(r.relayed))) {
        return fail(ErrorCode.InsufficientCapacity, 'Insufficient Capacity', [], auth);
      }
      this.#reservations.delete(hex);
      relayed.push(r.relayed);
    } else {
      // Step 7: the family asked for, else IPv4.
      const family = requested ?? 'ipv4';
      const ip = this.#relayIps.get(family);
      if (!ip) return fail(ErrorCode.AddressFamilyNotSupported, 'Address Family not Supported', [], auth);
      const port = this.#pickPort(now, ip, evenPort !== undefined, evenPort?.reserve ?? false);
      if (port === undefined) return fail(ErrorCode.InsufficientCapacity, 'Insufficient Capacity', [], auth);
      relayed.push({ address: ip, port });
      if (evenPort?.reserve) {
        reservation = this.#random.bytes(8);
        this.#reservations.set(Buffer.from(reservation).toString('hex'), {
          relayed: { address: ip, port: port + 1 },
          expiresMs: now + TURN_RESERVATION_LIFETIME_MS,
        });
      }
      if (additional === 'ipv6') {
        // Step 9: serve what we can; a missing family is reported in ADDRESS-ERROR-CODE.
        const ip6 = this.#relayIps.get('ipv6');
        const port6 = ip6 === undefined ? undefined : this.#pickPort(now, ip6, false, false);
        if (ip6 === undefined) {
          extra.push(attr(TurnAttr.ADDRESS_ERROR_CODE, { family: 'ipv6', code: ErrorCode.AddressFamilyNotSupported, reason: 'Address Family not Supported' }, m.transactionId));
        } else if (port6 === undefined) {
          extra.push(attr(TurnAttr.ADDRESS_ERROR_CODE, { family: 'ipv6', code: ErrorCode.InsufficientCapacity, reason: 'Insufficient Capacity' }, m.transactionId));
        } else {
          relayed.push({ address: ip6, port: port6 });
        }
      }
    }
    const lifetimeSec = this.#desiredLifetime(m) || this.#defaultLifetimeSec;
    const alloc: Allocation = {
      client: remote,
      server: local,
      relayed,
      username: auth.username,
      key: auth.key,
      transactionId: transactionKey(tx),
      reservationToken: reservation,
      expiresMs: now + lifetimeSec * 1000,
      permissions: new Map(),
      channels: new Map(),
      channelByPeer: new Map(),
    };
    this.#allocations.set(`${key(remote)}>${key(local)}`, alloc);
    for (const r of relayed) this.#byRelay.set(key(r), alloc);
    this.#events.push({ type: 'allocation-created', client: remote, relayed, username: auth.username, lifetimeSec });
    reply('success', this.#allocateSuccess(now, alloc, tx, extra), auth);
  }

  #allocateSuccess(now: number, a: Allocation, tx: Uint8Array, extra: StunAttribute[]): StunAttribute[] {
    const out: StunAttribute[] = a.relayed.map((r) => attr(TurnAttr.XOR_RELAYED_ADDRESS, r, tx));
    out.push(attr(TurnAttr.LIFETIME, Math.max(0, Math.ceil((a.expiresMs - now) / 1000)), tx));
    if (a.reservationToken) out.push(attr(TurnAttr.RESERVATION_TOKEN, a.reservationToken, tx));
    out.push(attr(Attr.XOR_MAPPED_ADDRESS, a.client, tx), ...extra);
    return out;
  }

  // RFC 8656 §7.2 / §8.2: min(requested, max), but never below the default; 0 stays 0 (a Refresh then deletes).
  #desiredLifetime(m: DecodedStunMessage): number {
    const requested = getAttribute(m, TurnAttr.LIFETIME);
    if (requested === undefined) return this.#defaultLifetimeSec;
    if (requested === 0) return 0;
    return Math.max(Math.min(requested, this.#maxLifetimeSec), this.#defaultLifetimeSec);
  }

  #pickPort(now: number, ip: string, even: boolean, reserveNext: boolean): number | undefined {
    const taken = (p: number): boolean => {
      if (this.#byRelay.has(key({ address: ip, port: p }))) return true;
      for (const r of this.#reservations.values()) {
        if (r.expiresMs > now && r.relayed.address === ip && r.relayed.port === p) return true;
      }
      return false;
    };
    const ok = (p: number): boolean =>
      p <= this.#maxPort && (!even || p % 2 === 0) && !taken(p) && (!reserveNext || (p + 1 <= this.#maxPort && !taken(p + 1)));
    // RFC 8656 §7.2 recommends randomised port assignment (RFC 6056).
    const span = this.#maxPort - this.#minPort + 1;
    const start = this.#randomInt(span);
    for (let i = 0; i < span; i++) {
      const p = this.#minPort + ((start + i) % span);
      if (ok(p)) return p;
    }
    return undefined;
  }

  #randomInt(n: number): number {
    const b = this.#random.bytes(4);
    return (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) % n;
  }

  #handleRefresh(now: number, a: Allocation, m: DecodedStunMessage, auth: Auth, reply: Reply, fail: Fail): void {
    const requested = hasAttribute(m, TurnAttr.REQUESTED_ADDRESS_FAMILY) ? getAttribute(m, TurnAttr.REQUESTED_ADDRESS_FAMILY) : undefined;
    // RFC 8656 §8.2: a family that does not match the allocation gets 443.
    if (requested && !a.relayed.some((r) => familyOfIp(r.address) === requested)) {
      return fail(ErrorCode.PeerAddressFamilyMismatch, 'Peer Address Family Mismatch', [], auth);
    }
    const lifetimeSec = this.#desiredLifetime(m);
    if (lifetimeSec === 0) {
      this.#delete(a, 'refresh');
    } else {
      a.expiresMs = now + lifetimeSec * 1000;
      this.#events.push({ type: 'allocation-refreshed', client: a.client, lifetimeSec });
    }
    reply('success', [attr(TurnAttr.LIFETIME, lifetimeSec, m.transactionId)], auth);
  }

  // Peer addresses of a CreatePermission/ChannelBind, checked per RFC 8656 §10.2/§12.2: undefined after answering.
  #peers(a: Allocation, m: DecodedStunMessage, auth: Auth, fail: Fail): TransportAddress[] | undefined {
    const peers: TransportAddress[] = [];
    for (const at of m.attributes) {
      if (at.type !== TurnAttr.XOR_PEER_ADDRESS.type) continue;
      const p = TurnAttr.XOR_PEER_ADDRESS.decode(at.value, m.transactionId);
      if (!p) {
        fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
        return undefined;
      }
      peers.push({ address: canonicalIp(p.address), port: p.port });
    }
    if (peers.length === 0) {
      fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
      return undefined;
    }
    for (const p of peers) {
      if (!a.relayed.some((r) => familyOfIp(r.address) === familyOfIp(p.address))) {
        fail(ErrorCode.PeerAddressFamilyMismatch, 'Peer Address Family Mismatch', [], auth);
        return undefined;
      }
    }
    return peers;
  }

  #permit(now: number, a: Allocation, ip: string): void {
    a.permissions.set(ip, now + this.#permissionMs);
    this.#events.push({ type: 'permission', client: a.client, peerIp: ip });
  }

  #handleCreatePermission(now: number, a: Allocation, m: DecodedStunMessage, auth: Auth, reply: Reply, fail: Fail): void {
    const peers = this.#peers(a, m, auth, fail);
    if (!peers) return;
    for (const p of peers) this.#permit(now, a, p.address);
    reply('success', [], auth);
  }

  #handleChannelBind(now: number, a: Allocation, m: DecodedStunMessage, auth: Auth, reply: Reply, fail: Fail): void {
    const channel = getAttribute(m, TurnAttr.CHANNEL_NUMBER);
    const peerCount = m.attributes.filter((x) => x.type === TurnAttr.XOR_PEER_ADDRESS.type).length;
    // RFC 8656 §12.2: both attributes, a channel in 0x4000-0x4FFF.
    if (channel === undefined || !isValidChannel(channel) || peerCount !== 1) return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    const peers = this.#peers(a, m, auth, fail);
    if (!peers) return;
    const peer = peers[0]!;
    // Expired bindings are unbound (RFC 8656 §12), so they do not block a new one.
    for (const [n, c] of a.channels) {
      if (c.expiresMs <= now) {
        a.channels.delete(n);
        a.channelByPeer.delete(key(c.peer));
      }
    }
    const bound = a.channels.get(channel);
    const peerChannel = a.channelByPeer.get(key(peer));
    if ((bound && key(bound.peer) !== key(peer)) || (peerChannel !== undefined && peerChannel !== channel)) {
      return fail(ErrorCode.BadRequest, 'Bad Request', [], auth);
    }
    a.channels.set(channel, { peer, expiresMs: now + this.#channelMs });
    a.channelByPeer.set(key(peer), channel);
    this.#permit(now, a, peer.address);
    this.#events.push({ type: 'channel-bound', client: a.client, channel, peer });
    reply('success', [], auth);
  }

  // RFC 8656 §11.2.
  #handleSend(now: number, a: Allocation, m: DecodedStunMessage): void {
    const peer = getAttribute(m, TurnAttr.XOR_PEER_ADDRESS);
    const data = getAttribute(m, TurnAttr.DATA);
    if (!peer || !data) return this.#drop('bad-indication');
    // DONT-FRAGMENT is unknown comprehension-required to this server: the indication is discarded.
    if (unknownComprehensionRequired(m, supportedAttributes()).length > 0) return this.#drop('bad-indication');
    const ip = canonicalIp(peer.address);
    const t = a.permissions.get(ip);
    if (t === undefined || t <= now) return this.#drop('no-permission');
    this.#relayToPeer(a, { address: ip, port: peer.port }, data);
  }

  #relayToPeer(a: Allocation, peer: TransportAddress, data: Uint8Array): void {
    const relay = a.relayed.find((r) => familyOfIp(r.address) === familyOfIp(peer.address));
    if (!relay) return this.#drop('no-permission');
    this.#toPeer++;
    this.#transmits.push({ local: relay, remote: peer, data });
  }

  // ---- peer side: RFC 8656 §11.3, §12.7 ----

  #fromPeer(now: number, a: Allocation, _local: TransportAddress, peer: TransportAddress, data: Uint8Array): void {
    const t = a.permissions.get(peer.address);
    if (t === undefined || t <= now) return this.#drop('no-permission');
    const channel = a.channelByPeer.get(key(peer));
    const ch = channel === undefined ? undefined : a.channels.get(channel);
    let out: Uint8Array;
    if (channel !== undefined && ch && ch.expiresMs > now) {
      out = encodeChannelData(channel, data);
    } else {
      const tx = this.#random.bytes(12);
      out = encodeStunMessage({
        method: StunMethod.Data,
        cls: 'indication',
        transactionId: tx,
        attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, peer, tx), attr(TurnAttr.DATA, data, tx)],
      });
    }
    this.#toClient++;
    this.#transmits.push({ local: a.server, remote: a.client, data: out });
  }

  #delete(a: Allocation, reason: 'refresh' | 'expired'): void {
    this.#allocations.delete(`${key(a.client)}>${key(a.server)}`);
    for (const r of a.relayed) if (this.#byRelay.get(key(r)) === a) this.#byRelay.delete(key(r));
    this.#events.push({ type: 'allocation-deleted', client: a.client, relayed: a.relayed, reason });
  }
}
