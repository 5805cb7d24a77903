/**
 * The peer side of one TURN allocation: permissions (RFC 8656 §9, installed by CreatePermission §10 or ChannelBind
 * §12.3), data out as Send indications or ChannelData (§11.1, §12.4), data in from Data indications and ChannelData
 * (§11.4, §12.5), and channel bindings (§12). `TurnClient` owns it and forwards to it only while allocated; requests
 * leave through the client's transactions, so they share its credentials and its transmit queue.
 * @module
 */
import { TurnError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import { attr, getAttribute } from '../stun/attributes.js';
import { StunMethod } from '../stun/constants.js';
import { encodeStunMessage, type DecodedStunMessage } from '../stun/message.js';
import { newTransactionId } from '../stun/transaction.js';
import type { RandomSource, TransportAddress } from '../types.js';
import { TurnAttr, type AddressFamily } from './attributes.js';
import { decodeChannelData, encodeChannelData } from './channel-data.js';
import { ChannelTable, type Channel } from './channels.js';
import { PermissionTable, type Permission } from './permissions.js';
import { unknownRequired, type Operation, type OperationBase } from './transactions.js';
import type { TurnClientEvent, TurnClientStats } from './types.js';

function familyOfIp(ip: string): AddressFamily | undefined {
  const f = ipFamily(ip);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
}

/** Fixed settings of the peer side. */
export interface PeersConfig {
  readonly random: RandomSource;
  /** TCP/TLS to the server: ChannelData is padded to 4 bytes (§12.5). */
  readonly stream: boolean;
  readonly autoBindChannel: boolean;
  readonly permissionLifetimeSec: number;
  readonly channelLifetimeSec: number;
  readonly maxQueuedPerPeer: number;
}

/** What the peer side needs from its client. */
export interface PeersHost {
  /** Starts a CreatePermission or ChannelBind transaction. */
  request(now: number, base: OperationBase): void;
  /** Queues bytes for the server on the current 5-tuple. */
  transmit(data: Uint8Array, paced: boolean): void;
  /** The allocation's relayed addresses: peers must be of one of their families. */
  relayed(): readonly TransportAddress[];
}

/** Permissions, channels and data of one allocation. It shares the client's event queue and counters. */
export class TurnPeers {
  readonly #config: PeersConfig;
  readonly #stats: TurnClientStats;
  readonly #events: TurnClientEvent[];
  readonly #host: PeersHost;
  readonly #permissions: PermissionTable;
  readonly #channels: ChannelTable;

  constructor(config: PeersConfig, stats: TurnClientStats, events: TurnClientEvent[], host: PeersHost) {
    this.#config = config;
    this.#stats = stats;
    this.#events = events;
    this.#host = host;
    this.#permissions = new PermissionTable(config.permissionLifetimeSec, config.maxQueuedPerPeer);
    this.#channels = new ChannelTable(config.channelLifetimeSec);
  }

  /** See `TurnClient.hasPermission`. */
  hasPermission(peerIp: string): boolean {
    return this.#permissions.get(canonicalIp(peerIp))?.state === 'installed';
  }

  /** See `TurnClient.channelFor`. */
  channelFor(peer: TransportAddress): number | undefined {
    const c = this.#channels.ofPeer(peer);
    return c?.state === 'bound' ? c.number : undefined;
  }

  /** See `TurnClient.send`. */
  send(now: number, peer: TransportAddress, data: Uint8Array, paced: boolean): void {
    const chan = this.#channels.ofPeer(peer);
    if (chan !== undefined) this.#expireChannel(now, chan);
    if (chan?.state === 'bound') {
      this.#host.transmit(encodeChannelData(chan.number, data, this.#config.stream), paced);
      this.#stats.channelDataSent++;
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
      this.#stats.noPermission++;
      return;
    }
    if (perm.state === 'pending') {
      if (!this.#permissions.enqueue(perm, peer, data)) this.#stats.queueOverflow++;
      return;
    }
    this.#sendIndication(peer, data, paced);
    if (this.#config.autoBindChannel && chan === undefined && this.#channels.mayAutoBind(peer)) this.#bind(now, peer);
  }

  /** See `TurnClient.createPermission`. */
  createPermission(now: number, peerIp: string): void {
    const ip = this.#checkPeerFamily(peerIp);
    let perm = this.#permissions.get(ip);
    if (perm === undefined) perm = this.#permissions.add(ip);
    if (perm.state === 'failed') perm.state = 'pending';
    if (!perm.inflight) this.#sendCreatePermission(now, perm);
  }

  /** See `TurnClient.bindChannel`. */
  bindChannel(now: number, peer: TransportAddress): number {
    this.#checkPeerFamily(peer.address);
    this.#channels.allowAutoBind(peer);
    return this.#bind(now, peer);
  }

  /** A CreatePermission or ChannelBind succeeded (the allocation is live). */
  succeeded(now: number, op: Operation): void {
    if (op.kind === 'permission') {
      const perm = this.#permissions.get(op.peerIp!);
      if (!perm) return;
      perm.inflight = false;
      const refreshed = perm.state === 'installed';
      this.#permissions.installed(now, perm);
      this.#events.push({ type: 'permission', peerIp: perm.ip, refreshed });
      this.#flush(now, perm);
      return;
    }
    const chan = this.#channels.ofNumber(op.channel!);
    if (!chan) return;
    const refreshed = this.#channels.bound(now, chan);
    this.#events.push({ type: 'channel', peer: chan.peer, channel: chan.number, refreshed });
    // RFC 8656 §12.3: a ChannelBind success also installs or refreshes the permission.
    const ip = canonicalIp(chan.peer.address);
    const perm = this.#permissions.get(ip) ?? this.#permissions.add(ip);
    const wasInstalled = perm.state === 'installed';
    this.#permissions.installed(now, perm);
    if (!wasInstalled) this.#events.push({ type: 'permission', peerIp: ip, refreshed: false });
    this.#flush(now, perm);
  }

  /** A CreatePermission or ChannelBind failed with anything but 437 (the allocation is live): not fatal. */
  failed(now: number, op: Operation, error: TurnError): void {
    if (op.kind === 'permission') {
      const perm = this.#permissions.get(op.peerIp!);
      if (perm) this.#stats.noPermission += this.#permissions.failed(perm);
      this.#events.push({ type: 'error', error, operation: 'permission', peer: { address: op.peerIp!, port: 0 }, fatal: false });
    } else {
      const chan = this.#channels.ofNumber(op.channel!);
      if (chan) this.#channels.failed(now, chan);
      this.#events.push({ type: 'error', error, operation: 'channel', peer: op.peer, fatal: false });
    }
  }

  /** Expires what ran out and refreshes what is due (the allocation is live). */
  handleTimeout(now: number): void {
    for (const p of this.#permissions.values()) {
      this.#expirePermission(now, p);
      if (p.state === 'installed' && !p.inflight && now >= p.refreshAt) this.#sendCreatePermission(now, p);
    }
    for (const c of this.#channels.values()) {
      this.#expireChannel(now, c);
      if (c.state === 'bound' && !c.inflight && now >= c.refreshAt) this.#sendChannelBind(now, c);
    }
  }

  /** Earliest permission or channel deadline, or Infinity. */
  nextDeadline(): number {
    return Math.min(this.#permissions.nextDeadline(), this.#channels.nextDeadline());
  }

  /** Drops the data waiting for permissions. */
  dropQueues(): void {
    this.#permissions.dropQueues();
  }

  /** Forgets every permission and channel (the allocation is gone). */
  clear(): void {
    this.#permissions.clear();
    this.#channels.clear();
  }

  /** A Data indication from the server. */
  onDataIndication(m: DecodedStunMessage): void {
    if (unknownRequired(m).length > 0) {
      // RFC 8489 §6.3.2: an indication with unknown comprehension-required attributes is discarded.
      this.#stats.malformed++;
      return;
    }
    const peer = getAttribute(m, TurnAttr.XOR_PEER_ADDRESS);
    if (peer === undefined) {
      this.#stats.malformed++;
      return;
    }
    // RFC 8656 §11.4: SHOULD drop data from peers the client has no permission for.
    const perm = this.#permissions.get(canonicalIp(peer.address));
    if (perm === undefined || perm.state === 'failed') {
      this.#stats.noPermission++;
      return;
    }
    const icmp = getAttribute(m, TurnAttr.ICMP);
    if (icmp !== undefined) {
      this.#events.push({ type: 'icmp', peer, icmp });
      return;
    }
    const data = getAttribute(m, TurnAttr.DATA);
    if (data === undefined) {
      this.#stats.malformed++;
      return;
    }
    this.#stats.dataIndications++;
    this.#events.push({ type: 'data', peer, data: data.slice(), channel: undefined });
  }

  /** ChannelData from the server. */
  onChannelData(now: number, bytes: Uint8Array): void {
    const cd = decodeChannelData(bytes);
    if (cd === undefined) {
      this.#stats.malformed++;
      return;
    }
    const chan = this.#channels.receiving(now, cd.channel, (ip) => this.hasPermission(ip));
    if (chan === undefined) {
      this.#stats.unknownChannel++;
      return;
    }
    this.#stats.channelDataReceived++;
    this.#events.push({ type: 'data', peer: chan.peer, data: cd.data.slice(), channel: chan.number });
  }

  #expirePermission(now: number, perm: Permission): void {
    if (this.#permissions.expire(now, perm)) this.#sendCreatePermission(now, perm);
  }

  #expireChannel(now: number, chan: Channel): void {
    if (this.#channels.expire(now, chan)) this.#sendChannelBind(now, chan);
  }

  #flush(now: number, perm: Permission): void {
    for (const q of this.#permissions.takeQueue(perm)) this.send(now, q.peer, q.data, false);
  }

  #sendCreatePermission(now: number, perm: Permission): void {
    perm.inflight = true;
    const ip = perm.ip;
    this.#host.request(now, {
      kind: 'permission',
      peerIp: ip,
      // RFC 8656 §10.1: the port is ignored; 0 is as good as any.
      build: (txid) => [attr(TurnAttr.XOR_PEER_ADDRESS, { address: ip, port: 0 }, txid)],
    });
  }

  #sendChannelBind(now: number, chan: Channel): void {
    chan.inflight = true;
    this.#host.request(now, {
      kind: 'channel',
      peer: chan.peer,
      channel: chan.number,
      build: (txid) => [attr(TurnAttr.CHANNEL_NUMBER, chan.number, txid), attr(TurnAttr.XOR_PEER_ADDRESS, chan.peer, txid)],
    });
  }

  #sendIndication(peer: TransportAddress, data: Uint8Array, paced: boolean): void {
    const txid = newTransactionId(this.#config.random);
    const bytes = encodeStunMessage({
      method: StunMethod.Send,
      cls: 'indication',
      transactionId: txid,
      attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, peer, txid), attr(TurnAttr.DATA, data, txid)],
    });
    this.#host.transmit(bytes, paced);
    this.#stats.sendIndications++;
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

  // RFC 8656 §10.1/§12.1: peers must be of a relayed address's family. Returns the canonical IP.
  #checkPeerFamily(address: string): string {
    const fam = familyOfIp(address);
    if (fam === undefined) throw new TurnError(0, 'bad-config', `peer address ${address} is not an IP literal`);
    if (!this.#host.relayed().some((r) => familyOfIp(r.address) === fam)) {
      throw new TurnError(443, 'peer-address-family-mismatch', `no ${fam} relayed address for peer ${address}`);
    }
    return canonicalIp(address);
  }
}
