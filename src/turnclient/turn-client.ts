/**
 * The TURN client (RFC 8656) as a sans-IO machine: one allocation on one server over one 5-tuple, with its
 * permissions and channels. It follows the drain contract of `src/machine.ts`: after any input or command, drain
 * `pollTransmit`, then `pollEvent`, then re-arm the timer from `pollTimeout`.
 *
 * Policies chosen here (RFC 8656 leaves them to the client):
 * - Data to a peer IP without an installed permission is queued (bounded, per peer) while a CreatePermission runs,
 *   not sent anyway: RFC 8656 §11.1 says the client MUST ensure a permission is installed, and a server discards
 *   Send indications without one (§11.2). The queue is flushed in order when the permission (or a ChannelBind,
 *   which also installs it) succeeds, and dropped (counted) if it fails.
 * - Until a ChannelBind succeeds, data goes in Send indications; after, in ChannelData (§12 allows sending
 *   ChannelData earlier but warns it may be dropped). ChannelData received on a channel whose bind is still in
 *   flight is accepted (§12: "be prepared to receive ChannelData ... as soon as it has sent the ChannelBind").
 * - Refresh timing: allocation, permissions and channels are refreshed `min(60 s, lifetime / 2)` before they
 *   expire (§8 suggests roughly one minute before). Permissions and channels are kept alive as long as the
 *   allocation lives. A peer keeps its channel number for the allocation's life, even after a failed ChannelBind,
 *   and a number never goes to another peer (which satisfies the §12 five-minute rule trivially).
 * - Credentials follow RFC 8489 §9.2: the first Allocate is unauthenticated; 401 is retried once with USERNAME,
 *   REALM, NONCE and MESSAGE-INTEGRITY (or MESSAGE-INTEGRITY-SHA256 with PASSWORD-ALGORITHM when the server sent
 *   PASSWORD-ALGORITHMS); 438 is retried with the new nonce (at most 3 times in a row). Responses to
 *   authenticated requests other than 401/438 must carry valid integrity, otherwise they are dropped and counted;
 *   if only such responses arrive the operation fails with reason `'integrity'` (§9.2.5).
 * @module
 */
import { InvalidStateError, TurnError, type TurnErrorReason } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import { Attr, attr, attributeCodec, getAttribute, hasAttribute, type AttributeCodec } from '../stun/attributes.js';
import { ErrorCode, StunMethod } from '../stun/constants.js';
import { encodeStunMessage, looksLikeStun, tryDecodeStunMessage, verifyIntegrity, type DecodedStunMessage, type EncodeOptions, type StunAttribute } from '../stun/message.js';
import { newTransactionId, TransactionTable, type TransactionTiming } from '../stun/transaction.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { formatAddress } from '../types.js';
import { PROTOCOL_UDP, TurnAttr, type AddressErrorCodeValue, type AddressFamily, type IcmpValue } from './attributes.js';
import { decodeChannelData, encodeChannelData, looksLikeChannelData } from './channel-data.js';
import { CHANNEL_LIFETIME_SEC, ChannelTable, type Channel } from './channels.js';
import { credentialAttributes, nonceFeatures, prepareUsername, readChallenge, type LongTermAuth } from './credentials.js';
import { PERMISSION_LIFETIME_SEC, PermissionTable, refreshLeadMs, type Permission } from './permissions.js';

// Part of this module's API since before the tables had files of their own.
export { CHANNEL_LIFETIME_SEC, PERMISSION_LIFETIME_SEC, refreshLeadMs };
/** RFC 8656 §6: default allocation lifetime. */
export const DEFAULT_ALLOCATION_LIFETIME_SEC = 600;
/** At most this many consecutive 438 retries for one operation (a server that always says stale would loop). */
const MAX_STALE_RETRIES = 3;

/** Transport between client and server. */
export type TurnTransport = 'udp' | 'tcp' | 'tls';

/** Configuration of a TurnClient. */
export interface TurnClientOptions {
  /** The server's transport address (already resolved; see `uri.ts` and `src/node/turn-resolve.ts`). */
  readonly server: TransportAddress;
  /** Default `'udp'`. For TCP/TLS the Node edge writes each transmit's bytes to the stream. */
  readonly transport?: TurnTransport;
  /** The base: the local socket address (for TCP/TLS the connection's local address). */
  readonly local: TransportAddress;
  readonly username: string;
  readonly password: string;
  readonly random: RandomSource;
  /** SOFTWARE sent in Allocate and Refresh requests (RFC 8656 §5 SHOULD). */
  readonly software?: string;
  /** REQUESTED-ADDRESS-FAMILY: ask for a relayed address of this family only. */
  readonly requestedFamily?: AddressFamily;
  /** ADDITIONAL-ADDRESS-FAMILY (only `'ipv6'` is valid): ask for a dual IPv4 + IPv6 allocation. */
  readonly additionalFamily?: 'ipv6';
  /** LIFETIME requested in Allocate and Refresh (a hint; the server decides). Omitted when unset. */
  readonly lifetimeSec?: number;
  /** Send DONT-FRAGMENT in the Allocate (retried without it on 420, RFC 8656 §7.4). */
  readonly dontFragment?: boolean;
  /** EVEN-PORT: `true` for an even port, `'reserve'` to also reserve the next one (R bit). */
  readonly evenPort?: boolean | 'reserve';
  /** RESERVATION-TOKEN from an earlier EVEN-PORT reservation. */
  readonly reservationToken?: Uint8Array;
  /** Bind a channel automatically on the first send to a peer (default true). */
  readonly autoBindChannel?: boolean;
  /** Lifetime assumed for permissions; RFC 8656 fixes 300 s. Only for tests against a server configured otherwise. */
  readonly permissionLifetimeSec?: number;
  /** Lifetime assumed for channels; RFC 8656 fixes 600 s. Only for tests against a server configured otherwise. */
  readonly channelLifetimeSec?: number;
  /** Retransmission settings for requests (RFC 8489 §6.2 defaults). */
  readonly timing?: TransactionTiming;
  /** Add FINGERPRINT to requests (default true; helps demultiplexing on a socket shared with ICE). */
  readonly fingerprint?: boolean;
  /** Datagrams held per peer IP while its permission is being installed (default 64; oldest dropped first). */
  readonly maxQueuedPerPeer?: number;
}

/** The operation a TURN error belongs to. */
export type TurnOperation = 'allocate' | 'refresh' | 'deallocate' | 'permission' | 'channel';

/** Events of a TurnClient. */
export type TurnClientEvent =
  | {
      readonly type: 'allocated';
      /** One relayed address, or two (IPv4 and IPv6) for a dual allocation. */
      readonly relayed: readonly TransportAddress[];
      /** XOR-MAPPED-ADDRESS: the client's server-reflexive address as the server saw it. */
      readonly mapped: TransportAddress | undefined;
      readonly lifetimeSec: number;
      /** ADDRESS-ERROR-CODE entries: families the server refused in a dual request (RFC 8656 §7.3). */
      readonly addressErrors: readonly AddressErrorCodeValue[];
      readonly reservationToken: Uint8Array | undefined;
    }
  | { readonly type: 'refreshed'; readonly lifetimeSec: number }
  | { readonly type: 'data'; readonly peer: TransportAddress; readonly data: Uint8Array; readonly channel: number | undefined }
  | { readonly type: 'icmp'; readonly peer: TransportAddress; readonly icmp: IcmpValue }
  | { readonly type: 'permission'; readonly peerIp: string; readonly refreshed: boolean }
  | { readonly type: 'channel'; readonly peer: TransportAddress; readonly channel: number; readonly refreshed: boolean }
  | {
      readonly type: 'error';
      readonly error: TurnError;
      readonly operation: TurnOperation;
      readonly peer: TransportAddress | undefined;
      /** True when the allocation is gone (state is now `'failed'`). */
      readonly fatal: boolean;
    }
  /** 300 Try Alternate was followed. For TCP/TLS the edge must connect there and call `redirectConnected`. */
  | { readonly type: 'redirect'; readonly server: TransportAddress; readonly domain: string | undefined }
  | { readonly type: 'closed' };

/** Life cycle of the allocation. */
export type TurnClientState = 'idle' | 'allocating' | 'redirecting' | 'allocated' | 'closing' | 'closed' | 'failed';

/** Counters for dropped input and sent data. */
export interface TurnClientStats {
  /** Undecodable STUN or ChannelData from the server, or responses missing required attributes. */
  malformed: number;
  /** Responses dropped for bad or missing integrity once authenticated. */
  unauthenticated: number;
  /** ChannelData on a channel that is not bound. */
  unknownChannel: number;
  /** Data indications from a peer without a permission, and sends dropped because a permission failed. */
  noPermission: number;
  /** Data dropped because a peer's pending-permission queue was full. */
  queueOverflow: number;
  sendIndications: number;
  channelDataSent: number;
  dataIndications: number;
  channelDataReceived: number;
  requests: number;
  /** Requests re-sent after a 401 challenge. */
  authRetries: number;
  /** Requests re-sent after 438 Stale Nonce. */
  staleNonceRetries: number;
}

interface Ctx {
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

function familyOfIp(ip: string): AddressFamily | undefined {
  const f = ipFamily(ip);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
}

function allAttributes<T>(m: DecodedStunMessage, codec: AttributeCodec<T>): T[] {
  const out: T[] = [];
  for (const a of m.attributes) {
    if (a.type !== codec.type) continue;
    const v = codec.decode(a.value, m.transactionId);
    if (v !== undefined) out.push(v);
  }
  return out;
}

/** Attributes below 0x8000 (comprehension-required, RFC 8489 §14) that no codec is registered for. */
function unknownRequired(m: DecodedStunMessage): StunAttribute[] {
  return m.attributes.filter((a) => a.type < 0x8000 && attributeCodec(a.type) === undefined);
}

/**
 * A TURN client for one allocation. See the module comment for the policies. Never throws on network input;
 * commands throw `InvalidStateError` / `TurnError` on misuse.
 */
export class TurnClient implements SansIoMachine<TurnClientEvent> {
  readonly #transport: TurnTransport;
  readonly #username: string;
  readonly #password: string;
  readonly #random: RandomSource;
  readonly #software: string | undefined;
  readonly #requestedFamily: AddressFamily | undefined;
  readonly #additionalFamily: 'ipv6' | undefined;
  readonly #lifetimeSec: number | undefined;
  readonly #dontFragment: boolean;
  readonly #evenPort: boolean | 'reserve';
  readonly #reservationToken: Uint8Array | undefined;
  readonly #autoBindChannel: boolean;
  readonly #timing: TransactionTiming | undefined;
  readonly #fingerprint: boolean;

  #server: TransportAddress;
  #local: TransportAddress;
  #state: TurnClientState = 'idle';
  #auth: LongTermAuth | undefined;
  #redirected = false;
  readonly #triedServers = new Set<string>();

  #relayed: TransportAddress[] = [];
  #mapped: TransportAddress | undefined;
  #allocationLifetimeSec = 0;
  #expiresAt = Infinity;
  #refreshAt = Infinity;
  #refreshInflight = false;

  readonly #permissions: PermissionTable;
  readonly #channels: ChannelTable;

  readonly #table = new TransactionTable<Ctx>();
  readonly #transmits: Datagram[] = [];
  readonly #events: TurnClientEvent[] = [];

  /** Counters; read freely. */
  readonly stats: TurnClientStats = {
    malformed: 0,
    unauthenticated: 0,
    unknownChannel: 0,
    noPermission: 0,
    queueOverflow: 0,
    sendIndications: 0,
    channelDataSent: 0,
    dataIndications: 0,
    channelDataReceived: 0,
    requests: 0,
    authRetries: 0,
    staleNonceRetries: 0,
  };

  constructor(options: TurnClientOptions) {
    if (options.requestedFamily !== undefined && options.additionalFamily !== undefined) {
      // RFC 8656 §7.1: MUST NOT include both.
      throw new TurnError(0, 'bad-config', 'requestedFamily and additionalFamily are mutually exclusive');
    }
    if (options.reservationToken !== undefined && (options.evenPort || options.requestedFamily || options.additionalFamily)) {
      throw new TurnError(0, 'bad-config', 'reservationToken excludes evenPort, requestedFamily and additionalFamily (RFC 8656 §7.1)');
    }
    if (options.additionalFamily !== undefined && options.evenPort === 'reserve') {
      throw new TurnError(0, 'bad-config', 'additionalFamily excludes an EVEN-PORT reservation (RFC 8656 §7.1)');
    }
    try {
      this.#username = prepareUsername(options.username);
    } catch (e) {
      throw new TurnError(0, 'bad-config', 'username contains a prohibited character', { cause: e });
    }
    this.#server = { address: canonicalIp(options.server.address), port: options.server.port };
    this.#local = options.local;
    this.#transport = options.transport ?? 'udp';
    this.#password = options.password;
    this.#random = options.random;
    this.#software = options.software;
    this.#requestedFamily = options.requestedFamily;
    this.#additionalFamily = options.additionalFamily;
    this.#lifetimeSec = options.lifetimeSec;
    this.#dontFragment = options.dontFragment ?? false;
    this.#evenPort = options.evenPort ?? false;
    this.#reservationToken = options.reservationToken;
    this.#autoBindChannel = options.autoBindChannel ?? true;
    this.#permissions = new PermissionTable(options.permissionLifetimeSec ?? PERMISSION_LIFETIME_SEC, options.maxQueuedPerPeer ?? 64);
    this.#channels = new ChannelTable(options.channelLifetimeSec ?? CHANNEL_LIFETIME_SEC);
    this.#timing = options.timing;
    this.#fingerprint = options.fingerprint ?? true;
  }

  // ---- read-only state ------------------------------------------------------------------------------------

  /** Where the allocation is in its life cycle. */
  get state(): TurnClientState {
    return this.#state;
  }
  /** The server currently used (changes after a 300 redirect). */
  get server(): TransportAddress {
    return this.#server;
  }
  /** The base socket address datagrams are sent from. */
  get local(): TransportAddress {
    return this.#local;
  }
  /** Transport to the server, as configured. */
  get transport(): TurnTransport {
    return this.#transport;
  }
  /** Relayed addresses once allocated. */
  get relayed(): readonly TransportAddress[] {
    return this.#relayed;
  }
  /** XOR-MAPPED-ADDRESS from the Allocate success (the base as the server sees it). */
  get mapped(): TransportAddress | undefined {
    return this.#mapped;
  }
  /** Lifetime granted by the last Allocate/Refresh success, in seconds. */
  get lifetimeSec(): number {
    return this.#allocationLifetimeSec;
  }
  /** True when a permission for `peerIp` is installed on the server (as far as the client knows). */
  hasPermission(peerIp: string): boolean {
    return this.#permissions.get(canonicalIp(peerIp))?.state === 'installed';
  }
  /** The confirmed channel number bound to `peer`, if any. */
  channelFor(peer: TransportAddress): number | undefined {
    const c = this.#channels.ofPeer(peer);
    return c?.state === 'bound' ? c.number : undefined;
  }

  // ---- commands -------------------------------------------------------------------------------------------

  /** Starts the Allocate transaction (first one unauthenticated, RFC 8489 §9.2.3.1). Drain afterwards. */
  allocate(now: number): void {
    if (this.#state !== 'idle') throw new InvalidStateError(`allocate() in state ${this.#state}`);
    this.#state = 'allocating';
    this.#triedServers.add(formatAddress(this.#server));
    this.#startAllocate(now);
  }

  /**
   * Sends `data` to `peer` through the relay: ChannelData when a channel is bound, else a Send indication when a
   * permission is installed, else queued while a CreatePermission is sent (see module comment). Drain afterwards.
   * `paced`: `data` is the first send of a connectivity check (RFC 8445 §14.2), so the wrapped datagram is marked
   * for the edge to stamp the process pacer; the mark is not kept while the data waits for a permission.
   */
  send(now: number, peer: TransportAddress, data: Uint8Array, paced = false): void {
    this.#requireAllocated('send');
    const chan = this.#channels.ofPeer(peer);
    if (chan !== undefined) this.#expireChannel(now, chan);
    if (chan?.state === 'bound') {
      this.#transmit(encodeChannelData(chan.number, data, this.#transport !== 'udp'), paced);
      this.stats.channelDataSent++;
      return;
    }
    const ip = this.#checkPeerFamily(peer.address);
    let perm = this.#permissions.get(ip);
    if (perm === undefined) {
      perm = this.#permissions.add(ip);
      this.#sendCreatePermission(now, perm);
    } else {
      this.#expirePermission(now, perm);
    }
    if (perm.state === 'failed') {
      this.stats.noPermission++;
      return;
    }
    if (perm.state === 'pending') {
      if (!this.#permissions.enqueue(perm, peer, data)) this.stats.queueOverflow++;
      return;
    }
    this.#sendIndication(peer, data, paced);
    if (this.#autoBindChannel && chan === undefined && this.#channels.mayAutoBind(peer)) this.#bind(now, peer);
  }

  /** Installs (or refreshes now) a permission for `peerIp` (RFC 8656 §10). Drain afterwards. */
  createPermission(now: number, peerIp: string): void {
    this.#requireAllocated('createPermission');
    const ip = this.#checkPeerFamily(peerIp);
    let perm = this.#permissions.get(ip);
    if (perm === undefined) perm = this.#permissions.add(ip);
    if (perm.state === 'failed') perm.state = 'pending';
    if (!perm.inflight) this.#sendCreatePermission(now, perm);
  }

  /**
   * Binds a channel to `peer` (RFC 8656 §12.1), or returns the number already bound or being bound. The number is
   * usable for receiving at once; sending switches to ChannelData once the bind succeeds. Drain afterwards.
   */
  bindChannel(now: number, peer: TransportAddress): number {
    this.#requireAllocated('bindChannel');
    this.#checkPeerFamily(peer.address);
    this.#channels.allowAutoBind(peer);
    return this.#bind(now, peer);
  }

  /**
   * Deletes the allocation (Refresh with LIFETIME 0, RFC 8656 §8.1) and emits `closed` when the server answered (or
   * 437, or time-out). Before an allocation exists it just stops. Idempotent. Drain afterwards.
   */
  close(now: number): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#permissions.dropQueues();
    if (this.#state === 'allocated') {
      this.#table.cancelWhere(() => true);
      this.#state = 'closing';
      this.#refreshAt = Infinity;
      this.#expiresAt = Infinity;
      this.#request(now, {
        kind: 'deallocate',
        build: (txid) => [attr(TurnAttr.LIFETIME, 0, txid)],
      });
      return;
    }
    this.#table.cancelWhere(() => true);
    this.#finishClosed();
  }

  /**
   * For TCP/TLS after a `redirect` event: the edge has connected to the new server from `local`; the Allocate is
   * retried there. (UDP redirects need no call: the same socket simply sends to the new server.)
   */
  redirectConnected(now: number, local: TransportAddress): void {
    if (this.#state !== 'redirecting') throw new InvalidStateError(`redirectConnected() in state ${this.#state}`);
    this.#local = local;
    this.#state = 'allocating';
    this.#startAllocate(now);
  }

  /** The stream (TCP/TLS) to the server closed: the allocation is lost (RFC 8656 §3.1 ties it to the connection). */
  connectionClosed(now: number): void {
    void now;
    if (this.#state === 'closed' || this.#state === 'failed') return;
    if (this.#state === 'closing') {
      this.#table.cancelWhere(() => true);
      this.#finishClosed();
      return;
    }
    if (this.#state === 'redirecting') return;
    this.#fail(new TurnError(0, 'connection-closed', 'connection to the TURN server closed'), 'allocate', undefined);
  }

  // ---- machine contract -----------------------------------------------------------------------------------

  /**
   * Offers a datagram (for TCP/TLS: one frame from `StreamFramer`). Returns true when it was TURN traffic for this
   * client: a response to one of its transactions, a Data indication, or ChannelData from the server. STUN from the
   * server that is not ours (e.g. a Binding response for the ICE agent on a shared socket) returns false.
   */
  handleReceive(now: number, datagram: Datagram): boolean {
    if ((datagram.transport ?? 'udp') !== this.#transport) return false;
    if (datagram.remote.port !== this.#server.port || canonicalIp(datagram.remote.address) !== this.#server.address) return false;
    if (datagram.local.port !== this.#local.port) return false;
    const bytes = datagram.data;
    if (looksLikeChannelData(bytes)) {
      this.#onChannelData(now, bytes);
      return true;
    }
    if (!looksLikeStun(bytes)) return false;
    const r = tryDecodeStunMessage(bytes);
    if (!r.ok) {
      this.stats.malformed++;
      return true;
    }
    const m = r.message;
    if (m.cls === 'indication') {
      if (m.method !== StunMethod.Data) return false;
      this.#onDataIndication(m);
      return true;
    }
    if (m.cls === 'request') return false;
    const ctx = this.#table.peek(m.transactionId);
    if (ctx === undefined) return false;
    if (m.method !== METHOD[ctx.kind]) {
      // RFC 8489 §6.3.1.1: a response carries its request's method; anything else does not answer this transaction.
      this.stats.malformed++;
      return true;
    }
    this.#onResponse(now, m, ctx);
    return true;
  }

  /** Runs retransmissions and refresh timers due at `now`. Drain afterwards. */
  handleTimeout(now: number): void {
    this.#table.handleTimeout(now);
    this.#pumpTable(now);
    if (this.#state !== 'allocated') return;
    if (now >= this.#expiresAt) {
      this.#fail(new TurnError(437, 'allocation-expired', 'allocation expired before a refresh succeeded'), 'refresh', undefined);
      return;
    }
    if (now >= this.#refreshAt && !this.#refreshInflight) this.#sendRefresh(now);
    for (const p of this.#permissions.values()) {
      this.#expirePermission(now, p);
      if (p.state === 'installed' && !p.inflight && now >= p.refreshAt) this.#sendCreatePermission(now, p);
    }
    for (const c of this.#channels.values()) {
      this.#expireChannel(now, c);
      if (c.state === 'bound' && !c.inflight && now >= c.refreshAt) this.#sendChannelBind(now, c);
    }
  }

  /** Next datagram for the server (UDP: send to `remote`; TCP/TLS: write `data` to the stream), or undefined. */
  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  /** Next event, in the order things happened, or undefined. */
  pollEvent(): TurnClientEvent | undefined {
    return this.#events.shift();
  }

  /** Earliest retransmission or refresh deadline, or undefined when nothing is scheduled. */
  pollTimeout(): number | undefined {
    let t = this.#table.pollTimeout() ?? Infinity;
    if (this.#state === 'allocated') {
      if (!this.#refreshInflight) t = Math.min(t, this.#refreshAt);
      t = Math.min(t, this.#expiresAt);
      // With a refresh in flight, wake at expiry to stop relying on it (see `PermissionTable.expire`).
      t = Math.min(t, this.#permissions.nextDeadline(), this.#channels.nextDeadline());
    }
    return t === Infinity ? undefined : t;
  }

  // ---- requests -------------------------------------------------------------------------------------------

  #startAllocate(now: number, carry?: Ctx): void {
    const dropDf = carry?.dropDontFragment ?? false;
    this.#request(
      now,
      {
        kind: 'allocate',
        build: (txid) => {
          const a = [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, txid)];
          if (this.#requestedFamily) a.push(attr(TurnAttr.REQUESTED_ADDRESS_FAMILY, this.#requestedFamily, txid));
          if (this.#additionalFamily) a.push(attr(TurnAttr.ADDITIONAL_ADDRESS_FAMILY, this.#additionalFamily, txid));
          if (this.#lifetimeSec !== undefined) a.push(attr(TurnAttr.LIFETIME, this.#lifetimeSec, txid));
          if (this.#dontFragment && !dropDf) a.push(attr(TurnAttr.DONT_FRAGMENT, true, txid));
          if (this.#evenPort) a.push(attr(TurnAttr.EVEN_PORT, { reserve: this.#evenPort === 'reserve' }, txid));
          if (this.#reservationToken) a.push(attr(TurnAttr.RESERVATION_TOKEN, this.#reservationToken, txid));
          return a;
        },
        dropDontFragment: dropDf,
      },
      carry,
    );
  }

  #sendRefresh(now: number): void {
    this.#refreshInflight = true;
    this.#request(now, {
      kind: 'refresh',
      build: (txid) => (this.#lifetimeSec !== undefined ? [attr(TurnAttr.LIFETIME, this.#lifetimeSec, txid)] : []),
    });
  }

  #sendCreatePermission(now: number, perm: Permission): void {
    perm.inflight = true;
    const ip = perm.ip;
    this.#request(now, {
      kind: 'permission',
      peerIp: ip,
      // RFC 8656 §10.1: the port is ignored; 0 is as good as any.
      build: (txid) => [attr(TurnAttr.XOR_PEER_ADDRESS, { address: ip, port: 0 }, txid)],
    });
  }

  #sendChannelBind(now: number, chan: Channel): void {
    chan.inflight = true;
    this.#request(now, {
      kind: 'channel',
      peer: chan.peer,
      channel: chan.number,
      build: (txid) => [attr(TurnAttr.CHANNEL_NUMBER, chan.number, txid), attr(TurnAttr.XOR_PEER_ADDRESS, chan.peer, txid)],
    });
  }

  /** Sends a request for `base`, signed when credentials are known; `carry` keeps retry counters across retries. */
  #request(now: number, base: Pick<Ctx, 'kind' | 'build'> & Partial<Ctx>, carry?: Ctx): void {
    const ctx: Ctx = {
      ...base,
      authenticated: false,
      auth: undefined,
      unauthorizedRetries: carry?.unauthorizedRetries ?? 0,
      staleRetries: carry?.staleRetries ?? 0,
      integrityFailed: false,
      dropDontFragment: base.dropDontFragment ?? carry?.dropDontFragment ?? false,
    };
    const txid = newTransactionId(this.#random);
    const attributes = ctx.build(txid);
    if (this.#software !== undefined && (ctx.kind === 'allocate' || ctx.kind === 'refresh' || ctx.kind === 'deallocate')) {
      attributes.push(attr(Attr.SOFTWARE, this.#software, txid));
    }
    const options: { -readonly [K in keyof EncodeOptions]: EncodeOptions[K] } = { fingerprint: this.#fingerprint };
    const auth = this.#auth;
    if (auth !== undefined) {
      attributes.push(...credentialAttributes(auth, this.#username, txid));
      options.integrityKey = auth.key;
      options.integrity = auth.integrity;
      ctx.authenticated = true;
      ctx.auth = auth;
    }
    const data = encodeStunMessage({ method: METHOD[ctx.kind], cls: 'request', transactionId: txid, attributes }, options);
    this.stats.requests++;
    const request = this.#datagram(data);
    this.#table.start(now, txid, request, ctx, this.#timing);
    // An Allocate is a gathering transaction: its first send is paced process-wide (RFC 8445 §14.1, §14.2).
    this.#pumpTable(now, ctx.kind === 'allocate' ? request : undefined);
  }

  #sendIndication(peer: TransportAddress, data: Uint8Array, paced: boolean): void {
    const txid = newTransactionId(this.#random);
    const bytes = encodeStunMessage({
      method: StunMethod.Send,
      cls: 'indication',
      transactionId: txid,
      attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, peer, txid), attr(TurnAttr.DATA, data, txid)],
    });
    this.#transmit(bytes, paced);
    this.stats.sendIndications++;
  }

  #bind(now: number, peer: TransportAddress): number {
    const existing = this.#channels.ofPeer(peer);
    if (existing) {
      // A peer keeps its number (see channels.ts): a failed bind is retried with the same one.
      if (existing.state === 'failed') {
        existing.state = 'pending';
        this.#sendChannelBind(now, existing);
      }
      return existing.number;
    }
    const chan = this.#channels.add(peer);
    this.#sendChannelBind(now, chan);
    return chan.number;
  }

  #datagram(data: Uint8Array): Datagram {
    return this.#transport === 'udp'
      ? { local: this.#local, remote: this.#server, data }
      : { local: this.#local, remote: this.#server, data, transport: this.#transport };
  }

  #transmit(data: Uint8Array, paced = false): void {
    const d = this.#datagram(data);
    this.#transmits.push(paced ? { ...d, paced: true } : d);
  }

  // Moves retransmissions into our queue (keeping order) and turns transaction time-outs into failures. `firstSend`
  // goes out marked `paced`; retransmissions re-send the same object, so the mark is on a copy.
  #pumpTable(now: number, firstSend?: Datagram): void {
    for (let d = this.#table.pollTransmit(); d; d = this.#table.pollTransmit()) {
      this.#transmits.push(d === firstSend ? { ...d, paced: true } : d);
    }
    for (let e = this.#table.pollEvent(); e; e = this.#table.pollEvent()) {
      const ctx = e.context;
      const err = ctx.integrityFailed
        ? new TurnError(0, 'integrity', `${ctx.kind}: only responses with bad integrity were received`)
        : new TurnError(408, 'timeout', `${ctx.kind}: no response from ${formatAddress(this.#server)}`);
      this.#operationFailed(now, ctx, err);
    }
  }

  // ---- responses ------------------------------------------------------------------------------------------

  #onResponse(now: number, m: DecodedStunMessage, ctx: Ctx): void {
    const errorCode = m.cls === 'error' ? getAttribute(m, Attr.ERROR_CODE) : undefined;
    if (m.cls === 'error' && errorCode === undefined) {
      this.stats.malformed++;
      return;
    }
    const code = errorCode?.code;
    const signed = m.integrityOffset >= 0 || m.integritySha256Offset >= 0;
    if (code === ErrorCode.BadRequest && !signed) {
      // RFC 8489 §9.2.5: a 400 without integrity is discarded as if never received (retransmissions go on).
      this.stats.unauthenticated++;
      return;
    }
    if (code !== ErrorCode.Unauthorized && code !== ErrorCode.StaleNonce) {
      // RFC 8489 §9.2.5: other responses whose NONCE has the cookie with the "password algorithms" bit but no
      // PASSWORD-ALGORITHMS attribute are ignored (a possible bid-down).
      const nonce = getAttribute(m, Attr.NONCE);
      if (nonce !== undefined && nonceFeatures(nonce)?.passwordAlgorithms && getAttribute(m, Attr.PASSWORD_ALGORITHMS) === undefined) {
        this.stats.malformed++;
        return;
      }
    }
    if (ctx.auth !== undefined && code !== ErrorCode.Unauthorized && code !== ErrorCode.StaleNonce) {
      // RFC 8489 §9.2.5: a response to an authenticated request must verify with the key the request used;
      // otherwise discard it as if never received (UDP: retransmissions go on), or end the transaction at once on a
      // reliable transport.
      const ok = verifyIntegrity(m, ctx.auth.key, ctx.auth.integrity) === 'ok';
      if (!ok) {
        this.stats.unauthenticated++;
        ctx.integrityFailed = true;
        if (this.#transport !== 'udp') {
          this.#table.take(m.transactionId);
          this.#operationFailed(now, ctx, new TurnError(0, 'integrity', `${ctx.kind}: response failed integrity check`));
        }
        return;
      }
    }
    const unknown = unknownRequired(m);
    if (unknown.length > 0) {
      // RFC 8489 §6.3.3/§6.3.4: unknown comprehension-required attributes: discard the response, the transaction failed.
      this.#table.take(m.transactionId);
      const types = unknown.map((a) => `0x${a.type.toString(16).padStart(4, '0')}`).join(', ');
      this.#operationFailed(now, ctx, new TurnError(0, 'unknown-attribute', `${ctx.kind}: response carries unknown comprehension-required attribute(s) ${types}`));
      return;
    }
    if (m.cls === 'success' && !this.#validSuccess(m, ctx)) {
      this.stats.malformed++;
      return;
    }
    this.#table.take(m.transactionId);
    if (m.cls === 'success') {
      this.#onSuccess(now, m, ctx);
      return;
    }
    this.#onError(now, m, ctx, errorCode!.code, errorCode!.reason);
  }

  #validSuccess(m: DecodedStunMessage, ctx: Ctx): boolean {
    // Present is enough here: an address the client cannot use is handled in `#onSuccess` (RFC 8656 §7.3).
    if (ctx.kind === 'allocate') return hasAttribute(m, TurnAttr.XOR_RELAYED_ADDRESS);
    return true;
  }

  #onSuccess(now: number, m: DecodedStunMessage, ctx: Ctx): void {
    switch (ctx.kind) {
      case 'allocate': {
        if (this.#state !== 'allocating') return;
        const relayed = allAttributes(m, TurnAttr.XOR_RELAYED_ADDRESS);
        const relayedCount = m.attributes.filter((a) => a.type === TurnAttr.XOR_RELAYED_ADDRESS.type).length;
        if (relayed.length < relayedCount || (hasAttribute(m, Attr.XOR_MAPPED_ADDRESS) && getAttribute(m, Attr.XOR_MAPPED_ADDRESS) === undefined)) {
          // RFC 8656 §7.3: a mapped or relayed address of a family the client cannot handle: the client MUST delete the
          // allocation. Report the failure, then send the delete (its outcome is not reported: see `#deallocated`).
          this.#fail(new TurnError(0, 'address-family-not-supported', 'allocate: success with an address of an unknown family'), 'allocate', undefined);
          this.#request(now, { kind: 'deallocate', build: (txid) => [attr(TurnAttr.LIFETIME, 0, txid)] });
          return;
        }
        const lifetime = getAttribute(m, TurnAttr.LIFETIME) ?? this.#lifetimeSec ?? DEFAULT_ALLOCATION_LIFETIME_SEC;
        this.#relayed = relayed;
        this.#mapped = getAttribute(m, Attr.XOR_MAPPED_ADDRESS);
        this.#state = 'allocated';
        this.#setLifetime(now, lifetime);
        this.#events.push({
          type: 'allocated',
          relayed: this.#relayed,
          mapped: this.#mapped,
          lifetimeSec: lifetime,
          addressErrors: allAttributes(m, TurnAttr.ADDRESS_ERROR_CODE),
          reservationToken: getAttribute(m, TurnAttr.RESERVATION_TOKEN),
        });
        return;
      }
      case 'refresh': {
        this.#refreshInflight = false;
        if (this.#state !== 'allocated') return;
        const lifetime = getAttribute(m, TurnAttr.LIFETIME) ?? this.#lifetimeSec ?? DEFAULT_ALLOCATION_LIFETIME_SEC;
        this.#setLifetime(now, lifetime);
        this.#events.push({ type: 'refreshed', lifetimeSec: lifetime });
        return;
      }
      case 'deallocate':
        this.#deallocated();
        return;
      case 'permission': {
        const perm = this.#permissions.get(ctx.peerIp!);
        if (!perm || this.#state !== 'allocated') return;
        perm.inflight = false;
        const refreshed = perm.state === 'installed';
        this.#permissions.installed(now, perm);
        this.#events.push({ type: 'permission', peerIp: perm.ip, refreshed });
        this.#flush(now, perm);
        return;
      }
      case 'channel': {
        const chan = this.#channels.ofNumber(ctx.channel!);
        if (!chan || this.#state !== 'allocated') return;
        const refreshed = this.#channels.bound(now, chan);
        this.#events.push({ type: 'channel', peer: chan.peer, channel: chan.number, refreshed });
        // RFC 8656 §12.3: a ChannelBind success also installs or refreshes the permission.
        const ip = canonicalIp(chan.peer.address);
        const perm = this.#permissions.get(ip) ?? this.#permissions.add(ip);
        const wasInstalled = perm.state === 'installed';
        this.#permissions.installed(now, perm);
        if (!wasInstalled) this.#events.push({ type: 'permission', peerIp: ip, refreshed: false });
        this.#flush(now, perm);
        return;
      }
    }
  }

  #onError(now: number, m: DecodedStunMessage, ctx: Ctx, code: number, reason: string): void {
    if (code === ErrorCode.Unauthorized) {
      // RFC 8489 §9.2.5: retry with credentials, but not again with the same username, realm and password.
      const ch = readChallenge(m, this.#username, this.#password, this.#auth);
      const realmChanged = ch.ok && this.#auth !== undefined && ch.auth.realm !== this.#auth.realm;
      if (ch.ok && (!ctx.authenticated || realmChanged) && ctx.unauthorizedRetries < 2) {
        this.#auth = ch.auth;
        ctx.unauthorizedRetries++;
        this.stats.authRetries++;
        this.#retry(now, ctx);
        return;
      }
      const why = ch.ok ? 'credentials rejected' : ch.why;
      this.#operationFailed(now, ctx, new TurnError(401, 'unauthorized', `${ctx.kind}: 401 ${reason} (${why})`));
      return;
    }
    if (code === ErrorCode.StaleNonce) {
      const ch = readChallenge(m, this.#username, this.#password, this.#auth);
      if (ch.ok && ctx.staleRetries < MAX_STALE_RETRIES) {
        this.#auth = ch.auth;
        ctx.staleRetries++;
        this.stats.staleNonceRetries++;
        this.#retry(now, ctx);
        return;
      }
      this.#operationFailed(now, ctx, new TurnError(438, 'stale-nonce', `${ctx.kind}: 438 ${reason}${ch.ok ? ' (repeated)' : ` (${ch.why})`}`));
      return;
    }
    if (code === ErrorCode.TryAlternate && ctx.kind === 'allocate') {
      const alt = getAttribute(m, Attr.ALTERNATE_SERVER);
      if (alt !== undefined && !this.#redirected && !this.#triedServers.has(formatAddress(alt))) {
        this.#redirect(now, alt, getAttribute(m, Attr.ALTERNATE_DOMAIN));
        return;
      }
    }
    if (code === ErrorCode.UnknownAttribute && ctx.kind === 'allocate' && this.#dontFragment && !ctx.dropDontFragment) {
      const unknown = getAttribute(m, Attr.UNKNOWN_ATTRIBUTES) ?? [];
      if (unknown.includes(TurnAttr.DONT_FRAGMENT.type)) {
        // RFC 8656 §7.4 (420): the server lacks DONT-FRAGMENT; retry without it.
        ctx.dropDontFragment = true;
        this.#startAllocate(now, ctx);
        return;
      }
    }
    if (code === ErrorCode.AllocationMismatch && ctx.kind === 'deallocate') {
      // RFC 8656 §8.3: 437 to a delete means it is already gone: success.
      this.#deallocated();
      return;
    }
    const err = new TurnError(code, REASON[code] ?? 'error-response', `${ctx.kind}: ${code} ${reason}`);
    this.#operationFailed(now, ctx, err);
  }

  #retry(now: number, ctx: Ctx): void {
    if (ctx.kind === 'allocate') {
      this.#startAllocate(now, ctx);
      return;
    }
    this.#request(now, ctx, ctx);
  }

  #redirect(now: number, server: TransportAddress, domain: string | undefined): void {
    this.#redirected = true;
    this.#server = { address: canonicalIp(server.address), port: server.port };
    this.#triedServers.add(formatAddress(this.#server));
    // A different server: its realm and nonce are unknown, so start again unauthenticated (RFC 8489 §9.2.3.1).
    this.#auth = undefined;
    this.#events.push({ type: 'redirect', server: this.#server, domain });
    if (this.#transport === 'udp') {
      this.#startAllocate(now);
    } else {
      this.#state = 'redirecting';
    }
  }

  /** Applies a failure of one operation; fatal ones end the allocation. */
  #operationFailed(now: number, ctx: Ctx, error: TurnError): void {
    switch (ctx.kind) {
      case 'allocate':
        if (this.#state === 'allocating') this.#fail(error, 'allocate', undefined);
        return;
      case 'deallocate':
        this.#deallocated();
        return;
      case 'refresh': {
        this.#refreshInflight = false;
        if (this.#state !== 'allocated') return;
        if (error.errorCode === ErrorCode.AllocationMismatch) {
          this.#fail(error, 'refresh', undefined);
          return;
        }
        // Not fatal while time remains: report and try again after a pause (the expiry timer ends it otherwise).
        this.#events.push({ type: 'error', error, operation: 'refresh', peer: undefined, fatal: false });
        this.#refreshAt = Math.min(this.#expiresAt, now + Math.max(1000, (this.#expiresAt - now) / 4));
        return;
      }
      case 'permission':
      case 'channel': {
        if (this.#state !== 'allocated') return;
        if (error.errorCode === ErrorCode.AllocationMismatch) {
          // RFC 8656 §5: a 437 to any request other than Allocate means the allocation is gone.
          this.#fail(error, ctx.kind, ctx.peer);
          return;
        }
        if (ctx.kind === 'permission') {
          const perm = this.#permissions.get(ctx.peerIp!);
          if (perm) this.stats.noPermission += this.#permissions.failed(perm);
          this.#events.push({ type: 'error', error, operation: 'permission', peer: { address: ctx.peerIp!, port: 0 }, fatal: false });
        } else {
          const chan = this.#channels.ofNumber(ctx.channel!);
          if (chan) this.#channels.failed(now, chan);
          this.#events.push({ type: 'error', error, operation: 'channel', peer: ctx.peer, fatal: false });
        }
        return;
      }
    }
  }

  #fail(error: TurnError, operation: TurnOperation, peer: TransportAddress | undefined): void {
    this.#table.cancelWhere(() => true);
    this.#state = 'failed';
    this.#permissions.dropQueues();
    this.#permissions.clear();
    this.#channels.clear();
    this.#refreshAt = Infinity;
    this.#expiresAt = Infinity;
    this.#refreshInflight = false;
    this.#events.push({ type: 'error', error, operation, peer, fatal: true });
  }

  /** A delete ended (success, 437 or failure): `closed` after `close()`; silent after a §7.3 delete of a failed allocation. */
  #deallocated(): void {
    if (this.#state === 'closing') this.#finishClosed();
  }

  #finishClosed(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#permissions.clear();
    this.#channels.clear();
    this.#refreshAt = Infinity;
    this.#expiresAt = Infinity;
    this.#events.push({ type: 'closed' });
  }

  #setLifetime(now: number, lifetimeSec: number): void {
    this.#allocationLifetimeSec = lifetimeSec;
    this.#expiresAt = now + lifetimeSec * 1000;
    this.#refreshAt = this.#expiresAt - refreshLeadMs(lifetimeSec);
  }

  // ---- permissions and data -------------------------------------------------------------------------------

  #expirePermission(now: number, perm: Permission): void {
    if (this.#permissions.expire(now, perm)) this.#sendCreatePermission(now, perm);
  }

  #expireChannel(now: number, chan: Channel): void {
    if (this.#channels.expire(now, chan)) this.#sendChannelBind(now, chan);
  }

  #flush(now: number, perm: Permission): void {
    for (const q of this.#permissions.takeQueue(perm)) this.send(now, q.peer, q.data);
  }

  #onDataIndication(m: DecodedStunMessage): void {
    if (unknownRequired(m).length > 0) {
      // RFC 8489 §6.3.2: an indication with unknown comprehension-required attributes is discarded.
      this.stats.malformed++;
      return;
    }
    const peer = getAttribute(m, TurnAttr.XOR_PEER_ADDRESS);
    if (peer === undefined) {
      this.stats.malformed++;
      return;
    }
    // RFC 8656 §11.4: SHOULD drop data from peers the client has no permission for.
    const perm = this.#permissions.get(canonicalIp(peer.address));
    if (perm === undefined || perm.state === 'failed') {
      this.stats.noPermission++;
      return;
    }
    const icmp = getAttribute(m, TurnAttr.ICMP);
    if (icmp !== undefined) {
      this.#events.push({ type: 'icmp', peer, icmp });
      return;
    }
    const data = getAttribute(m, TurnAttr.DATA);
    if (data === undefined) {
      this.stats.malformed++;
      return;
    }
    this.stats.dataIndications++;
    this.#events.push({ type: 'data', peer, data: data.slice(), channel: undefined });
  }

  #onChannelData(now: number, bytes: Uint8Array): void {
    const cd = decodeChannelData(bytes);
    if (cd === undefined) {
      this.stats.malformed++;
      return;
    }
    const chan = this.#channels.receiving(now, cd.channel, (ip) => this.hasPermission(ip));
    if (chan === undefined) {
      this.stats.unknownChannel++;
      return;
    }
    this.stats.channelDataReceived++;
    this.#events.push({ type: 'data', peer: chan.peer, data: cd.data.slice(), channel: chan.number });
  }

  #requireAllocated(what: string): void {
    if (this.#state !== 'allocated') throw new InvalidStateError(`${what}() needs an allocation (state is ${this.#state})`);
  }

  // RFC 8656 §10.1/§12.1: peers must be of a relayed address's family. Returns the canonical IP.
  #checkPeerFamily(address: string): string {
    const fam = familyOfIp(address);
    if (fam === undefined) throw new TurnError(0, 'bad-config', `peer address ${address} is not an IP literal`);
    if (!this.#relayed.some((r) => familyOfIp(r.address) === fam)) {
      throw new TurnError(443, 'peer-address-family-mismatch', `no ${fam} relayed address for peer ${address}`);
    }
    return canonicalIp(address);
  }
}
