/**
 * The channel bindings of one TURN allocation (RFC 8656 §12): numbers, states and lifetimes. A table, no IO:
 * `TurnClient` sends the ChannelBind requests and reports the events.
 *
 * A peer keeps its number for the allocation's life, even after a failed ChannelBind, and a number never goes to
 * another peer: the server may still hold the old binding, and §12 forbids binding an address to a different number
 * within 5 minutes of its expiry, while re-binding the same number to the same peer is always allowed.
 * @module
 */
import { InvalidStateError } from '../errors.js';
import { canonicalIp } from '../ip.js';
import type { TransportAddress } from '../types.js';
import { MAX_CHANNEL, MIN_CHANNEL } from './channel-data.js';
import { refreshLeadMs } from './permissions.js';

/** RFC 8656 §12: a channel binding lasts 10 minutes unless refreshed. */
export const CHANNEL_LIFETIME_SEC = 600;

/** One channel binding. */
export interface Channel {
  readonly number: number;
  readonly peer: TransportAddress;
  /**
   * `failed`: the last ChannelBind failed. The number stays the peer's, data goes in Send indications, and
   * ChannelData is still accepted until `expiresAt` (a failed refresh leaves the server's binding live until then).
   */
  state: 'pending' | 'bound' | 'failed';
  inflight: boolean;
  refreshAt: number;
  expiresAt: number;
}

function peerKey(a: TransportAddress): string {
  return `${canonicalIp(a.address)}|${a.port}`;
}

/** The channels of one allocation, by peer transport address and by number. */
export class ChannelTable {
  readonly #byPeer = new Map<string, Channel>();
  readonly #byNumber = new Map<number, Channel>();
  /** Peers whose ChannelBind failed: not bound again automatically (only by an explicit `bindChannel`). */
  readonly #noAutoBind = new Set<string>();
  #next = MIN_CHANNEL;
  readonly #lifetimeSec: number;

  /** `lifetimeSec`: how long a binding lasts (600 s by RFC). */
  constructor(lifetimeSec: number) {
    this.#lifetimeSec = lifetimeSec;
  }

  /** The channel of `peer` (any state). */
  ofPeer(peer: TransportAddress): Channel | undefined {
    return this.#byPeer.get(peerKey(peer));
  }

  /** The channel with this number (any state). */
  ofNumber(number: number): Channel | undefined {
    return this.#byNumber.get(number);
  }

  /** Every channel, in the order they were bound. */
  values(): IterableIterator<Channel> {
    return this.#byPeer.values();
  }

  /** True when a send to `peer` may bind a channel on its own: no earlier bind failed and numbers remain. */
  mayAutoBind(peer: TransportAddress): boolean {
    return !this.#noAutoBind.has(peerKey(peer)) && this.#next <= MAX_CHANNEL;
  }

  /** The application asked for a channel to `peer`: automatic re-binds are allowed again. */
  allowAutoBind(peer: TransportAddress): void {
    this.#noAutoBind.delete(peerKey(peer));
  }

  /** A new pending channel to `peer` with the next free number; throws when all 4096 are used. */
  add(peer: TransportAddress): Channel {
    if (this.#next > MAX_CHANNEL) throw new InvalidStateError('all 4096 channel numbers have been used on this allocation');
    const chan: Channel = { number: this.#next++, peer, state: 'pending', inflight: false, refreshAt: Infinity, expiresAt: Infinity };
    this.#byPeer.set(peerKey(peer), chan);
    this.#byNumber.set(chan.number, chan);
    return chan;
  }

  /** A ChannelBind succeeded at `now`. Returns true when the channel was already bound (a refresh). */
  bound(now: number, chan: Channel): boolean {
    chan.inflight = false;
    const refreshed = chan.state === 'bound';
    chan.state = 'bound';
    chan.expiresAt = now + this.#lifetimeSec * 1000;
    chan.refreshAt = chan.expiresAt - refreshLeadMs(this.#lifetimeSec);
    return refreshed;
  }

  /**
   * A ChannelBind failed at `now`. The number stays the peer's and sends use Send indications from now on; a
   * binding that was confirmed stays live on the server until its expiry (§12.5: the server keeps using ChannelData).
   */
  failed(now: number, chan: Channel): void {
    chan.inflight = false;
    if (chan.state !== 'bound') chan.expiresAt = now;
    chan.state = 'failed';
    this.#noAutoBind.add(peerKey(chan.peer));
  }

  /**
   * RFC 8656 §12: an expired binding is not used for sending until a ChannelBind (same number, same peer) succeeds.
   * Returns true when that ChannelBind must be sent now.
   */
  expire(now: number, chan: Channel): boolean {
    if (chan.state !== 'bound' || now < chan.expiresAt) return false;
    chan.state = 'pending';
    return !chan.inflight;
  }

  /**
   * The channel ChannelData with this number is accepted on, if any. One whose ChannelBind failed may still be bound
   * on the server until `expiresAt`: accepted until then, and (§12.6 RECOMMENDED) only while `hasPermission` says a
   * permission towards the peer is active.
   */
  receiving(now: number, number: number, hasPermission: (peerIp: string) => boolean): Channel | undefined {
    const chan = this.#byNumber.get(number);
    if (chan === undefined || (chan.state === 'failed' && (now >= chan.expiresAt || !hasPermission(chan.peer.address)))) return undefined;
    return chan;
  }

  /** Forgets every binding (numbers are not reused). */
  clear(): void {
    this.#byPeer.clear();
    this.#byNumber.clear();
  }

  /** Earliest refresh of a bound channel, or its expiry while the refresh is in flight; Infinity if none. */
  nextDeadline(): number {
    let t = Infinity;
    for (const c of this.#byPeer.values()) if (c.state === 'bound') t = Math.min(t, c.inflight ? c.expiresAt : c.refreshAt);
    return t;
  }
}
