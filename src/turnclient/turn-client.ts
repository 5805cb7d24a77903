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
 *
 * The parts live beside it: `types.ts` (options, events, stats), `allocate.ts` (the Allocate messages),
 * `transactions.ts` (requests, credentials, response checks), `peers.ts` (permissions, channels and data).
 * @module
 */
import { InvalidStateError, TurnError } from '../errors.js';
import { canonicalIp } from '../ip.js';
import { Attr, attr, getAttribute } from '../stun/attributes.js';
import { ErrorCode, StunMethod } from '../stun/constants.js';
import { looksLikeStun, tryDecodeStunMessage, type DecodedStunMessage } from '../stun/message.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram, TransportAddress } from '../types.js';
import { formatAddress } from '../types.js';
import { allocateOperation, allocateRequest, readAllocateSuccess, type AllocateRequest } from './allocate.js';
import { TurnAttr } from './attributes.js';
import { looksLikeChannelData } from './channel-data.js';
import { CHANNEL_LIFETIME_SEC } from './channels.js';
import { prepareUsername } from './credentials.js';
import { TurnPeers } from './peers.js';
import { PERMISSION_LIFETIME_SEC, refreshLeadMs } from './permissions.js';
import { errorResponseError, TurnTransactions, type Operation } from './transactions.js';
import { DEFAULT_ALLOCATION_LIFETIME_SEC, type TurnClientEvent, type TurnClientOptions, type TurnClientState, type TurnClientStats, type TurnOperation, type TurnTransport } from './types.js';

// Part of this module's API since before the tables and types had files of their own.
export { CHANNEL_LIFETIME_SEC, DEFAULT_ALLOCATION_LIFETIME_SEC, PERMISSION_LIFETIME_SEC, refreshLeadMs };
export type { TurnClientEvent, TurnClientOptions, TurnClientState, TurnClientStats, TurnOperation, TurnTransport } from './types.js';

/**
 * A TURN client for one allocation. See the module comment for the policies. Never throws on network input;
 * commands throw `InvalidStateError` / `TurnError` on misuse.
 */
export class TurnClient implements SansIoMachine<TurnClientEvent> {
  readonly #transport: TurnTransport;
  readonly #allocate: AllocateRequest;

  #server: TransportAddress;
  #local: TransportAddress;
  #state: TurnClientState = 'idle';
  #redirected = false;
  readonly #triedServers = new Set<string>();

  #relayed: TransportAddress[] = [];
  #mapped: TransportAddress | undefined;
  #allocationLifetimeSec = 0;
  #expiresAt = Infinity;
  #refreshAt = Infinity;
  #refreshInflight = false;
  /** close() came while an Allocate was in flight: delete the allocation if it succeeds. */
  #releaseOnAllocated = false;

  readonly #transmits: Datagram[] = [];
  readonly #events: TurnClientEvent[] = [];
  readonly #requests: TurnTransactions;
  readonly #peers: TurnPeers;

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
    this.#allocate = allocateRequest(options);
    let username: string;
    try {
      username = prepareUsername(options.username);
    } catch (e) {
      throw new TurnError(0, 'bad-config', 'username contains a prohibited character', { cause: e });
    }
    this.#server = { address: canonicalIp(options.server.address), port: options.server.port };
    this.#local = options.local;
    this.#transport = options.transport ?? 'udp';
    this.#requests = new TurnTransactions(
      {
        transport: this.#transport,
        username,
        password: options.password,
        random: options.random,
        software: options.software,
        fingerprint: options.fingerprint ?? true,
        timing: options.timing,
        pacer: options.pacer,
      },
      this.stats,
      this.#transmits,
      {
        server: () => this.#server,
        datagram: (data) => this.#datagram(data),
        succeeded: (now, m, op) => this.#onSuccess(now, m, op),
        errorResponse: (now, m, op, code, reason) => this.#onError(now, m, op, code, reason),
        failed: (now, op, error) => this.#operationFailed(now, op, error),
        // Closing with an Allocate in flight: a challenge is not answered (no allocation exists yet to delete).
        mayRetry: (op) => !(op.kind === 'allocate' && this.#state === 'closing'),
      },
    );
    this.#peers = new TurnPeers(
      {
        random: options.random,
        stream: this.#transport !== 'udp',
        autoBindChannel: options.autoBindChannel ?? true,
        permissionLifetimeSec: options.permissionLifetimeSec ?? PERMISSION_LIFETIME_SEC,
        channelLifetimeSec: options.channelLifetimeSec ?? CHANNEL_LIFETIME_SEC,
        maxQueuedPerPeer: options.maxQueuedPerPeer ?? 64,
      },
      this.stats,
      this.#events,
      {
        request: (now, base) => this.#requests.request(now, base),
        transmit: (data, paced) => this.#transmit(data, paced),
        relayed: () => this.#relayed,
      },
    );
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
    return this.#peers.hasPermission(peerIp);
  }
  /** The confirmed channel number bound to `peer`, if any. */
  channelFor(peer: TransportAddress): number | undefined {
    return this.#peers.channelFor(peer);
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
    this.#peers.send(now, peer, data, paced);
  }

  /** Installs (or refreshes now) a permission for `peerIp` (RFC 8656 §10). Drain afterwards. */
  createPermission(now: number, peerIp: string): void {
    this.#requireAllocated('createPermission');
    this.#peers.createPermission(now, peerIp);
  }

  /**
   * Binds a channel to `peer` (RFC 8656 §12.1), or returns the number already bound or being bound. The number is
   * usable for receiving at once; sending switches to ChannelData once the bind succeeds. Drain afterwards.
   */
  bindChannel(now: number, peer: TransportAddress): number {
    this.#requireAllocated('bindChannel');
    return this.#peers.bindChannel(now, peer);
  }

  /**
   * Deletes the allocation (Refresh with LIFETIME 0, RFC 8656 §8.1) and emits `closed` when the server answered (or
   * 437, or time-out). With an Allocate still in flight it waits for its answer, since the server may have created the
   * allocation already, and deletes what it created; a challenge (401, 438) or a failure then just ends it. Before any
   * Allocate it just stops. Idempotent. Drain afterwards.
   */
  close(now: number): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    this.#peers.dropQueues();
    if (this.#state === 'allocating' && this.#requests.inflight('allocate')) {
      this.#state = 'closing';
      this.#releaseOnAllocated = true;
      return;
    }
    if (this.#state === 'allocated') {
      this.#requests.cancelAll();
      this.#state = 'closing';
      this.#refreshAt = Infinity;
      this.#expiresAt = Infinity;
      this.#requests.request(now, {
        kind: 'deallocate',
        build: (txid) => [attr(TurnAttr.LIFETIME, 0, txid)],
      });
      return;
    }
    this.#requests.cancelAll();
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
      this.#requests.cancelAll();
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
      this.#peers.onChannelData(now, bytes);
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
      this.#peers.onDataIndication(m);
      return true;
    }
    if (m.cls === 'request') return false;
    return this.#requests.handleResponse(now, m);
  }

  /** Runs retransmissions and refresh timers due at `now`. Drain afterwards. */
  handleTimeout(now: number): void {
    this.#requests.handleTimeout(now);
    if (this.#state !== 'allocated') return;
    if (now >= this.#expiresAt) {
      this.#fail(new TurnError(437, 'allocation-expired', 'allocation expired before a refresh succeeded'), 'refresh', undefined);
      return;
    }
    if (now >= this.#refreshAt && !this.#refreshInflight) this.#sendRefresh(now);
    this.#peers.handleTimeout(now);
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
    let t = this.#requests.pollTimeout() ?? Infinity;
    if (this.#state === 'allocated') {
      if (!this.#refreshInflight) t = Math.min(t, this.#refreshAt);
      t = Math.min(t, this.#expiresAt);
      // With a refresh in flight, wake at expiry to stop relying on it (see `PermissionTable.expire`).
      t = Math.min(t, this.#peers.nextDeadline());
    }
    return t === Infinity ? undefined : t;
  }

  // ---- requests -------------------------------------------------------------------------------------------

  #startAllocate(now: number, carry?: Operation): void {
    this.#requests.request(now, allocateOperation(this.#allocate, carry?.dropDontFragment ?? false), carry);
  }

  #sendRefresh(now: number): void {
    this.#refreshInflight = true;
    this.#requests.request(now, {
      kind: 'refresh',
      build: (txid) => (this.#allocate.lifetimeSec !== undefined ? [attr(TurnAttr.LIFETIME, this.#allocate.lifetimeSec, txid)] : []),
    });
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

  // ---- responses ------------------------------------------------------------------------------------------

  #onSuccess(now: number, m: DecodedStunMessage, ctx: Operation): void {
    switch (ctx.kind) {
      case 'allocate': {
        if (this.#state === 'closing' && this.#releaseOnAllocated) {
          // Closed while this Allocate was in flight: the server created an allocation nobody wants; delete it.
          this.#releaseOnAllocated = false;
          this.#requests.request(now, { kind: 'deallocate', build: (txid) => [attr(TurnAttr.LIFETIME, 0, txid)] });
          return;
        }
        if (this.#state !== 'allocating') return;
        const granted = readAllocateSuccess(m);
        if (granted === undefined) {
          // RFC 8656 §7.3: a mapped or relayed address of a family the client cannot handle: the client MUST delete the
          // allocation. Report the failure, then send the delete (its outcome is not reported: see `#deallocated`).
          this.#fail(new TurnError(0, 'address-family-not-supported', 'allocate: success with an address of an unknown family'), 'allocate', undefined);
          this.#requests.request(now, { kind: 'deallocate', build: (txid) => [attr(TurnAttr.LIFETIME, 0, txid)] });
          return;
        }
        const lifetime = granted.lifetimeSec ?? this.#allocate.lifetimeSec ?? DEFAULT_ALLOCATION_LIFETIME_SEC;
        this.#relayed = granted.relayed;
        this.#mapped = granted.mapped;
        this.#state = 'allocated';
        this.#setLifetime(now, lifetime);
        this.#events.push({
          type: 'allocated',
          relayed: this.#relayed,
          mapped: this.#mapped,
          lifetimeSec: lifetime,
          addressErrors: granted.addressErrors,
          reservationToken: granted.reservationToken,
        });
        return;
      }
      case 'refresh': {
        this.#refreshInflight = false;
        if (this.#state !== 'allocated') return;
        const lifetime = getAttribute(m, TurnAttr.LIFETIME) ?? this.#allocate.lifetimeSec ?? DEFAULT_ALLOCATION_LIFETIME_SEC;
        this.#setLifetime(now, lifetime);
        this.#events.push({ type: 'refreshed', lifetimeSec: lifetime });
        return;
      }
      case 'deallocate':
        this.#deallocated();
        return;
      case 'permission':
      case 'channel':
        if (this.#state === 'allocated') this.#peers.succeeded(now, ctx);
        return;
    }
  }

  #onError(now: number, m: DecodedStunMessage, ctx: Operation, code: number, reason: string): void {
    if (ctx.kind === 'allocate' && this.#state === 'closing') {
      // Closed while the Allocate was in flight and it failed (a redirect or a 420 included): nothing to delete.
      this.#finishClosed();
      return;
    }
    if (code === ErrorCode.TryAlternate && ctx.kind === 'allocate') {
      const alt = getAttribute(m, Attr.ALTERNATE_SERVER);
      if (alt !== undefined && !this.#redirected && !this.#triedServers.has(formatAddress(alt))) {
        this.#redirect(now, alt, getAttribute(m, Attr.ALTERNATE_DOMAIN));
        return;
      }
    }
    if (code === ErrorCode.UnknownAttribute && ctx.kind === 'allocate' && this.#allocate.dontFragment && !ctx.dropDontFragment) {
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
    this.#operationFailed(now, ctx, errorResponseError(ctx.kind, code, reason));
  }

  #redirect(now: number, server: TransportAddress, domain: string | undefined): void {
    this.#redirected = true;
    this.#server = { address: canonicalIp(server.address), port: server.port };
    this.#triedServers.add(formatAddress(this.#server));
    this.#requests.forgetCredentials();
    this.#events.push({ type: 'redirect', server: this.#server, domain });
    if (this.#transport === 'udp') {
      this.#startAllocate(now);
    } else {
      this.#state = 'redirecting';
    }
  }

  /** Applies a failure of one operation; fatal ones end the allocation. */
  #operationFailed(now: number, ctx: Operation, error: TurnError): void {
    switch (ctx.kind) {
      case 'allocate':
        if (this.#state === 'allocating') this.#fail(error, 'allocate', undefined);
        else if (this.#state === 'closing' && this.#releaseOnAllocated) this.#finishClosed();
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
        this.#peers.failed(now, ctx, error);
        return;
      }
    }
  }

  #fail(error: TurnError, operation: TurnOperation, peer: TransportAddress | undefined): void {
    this.#requests.cancelAll();
    this.#state = 'failed';
    this.#peers.dropQueues();
    this.#peers.clear();
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
    this.#peers.clear();
    this.#refreshAt = Infinity;
    this.#expiresAt = Infinity;
    this.#events.push({ type: 'closed' });
  }

  #setLifetime(now: number, lifetimeSec: number): void {
    this.#allocationLifetimeSec = lifetimeSec;
    this.#expiresAt = now + lifetimeSec * 1000;
    this.#refreshAt = this.#expiresAt - refreshLeadMs(lifetimeSec);
  }

  #requireAllocated(what: string): void {
    if (this.#state !== 'allocated') throw new InvalidStateError(`${what}() needs an allocation (state is ${this.#state})`);
  }
}
