/**
 * The permissions of one TURN allocation (RFC 8656 §9): their state, lifetimes and the data held for a peer while
 * its CreatePermission runs. A table, no IO: `TurnClient` sends the CreatePermission requests the table calls for
 * and reports the events.
 * @module
 */
import type { TransportAddress } from '../types.js';

/** RFC 8656 §9: Permission Lifetime MUST be 300 seconds. */
export const PERMISSION_LIFETIME_SEC = 300;

/**
 * How long before expiry something with `lifetimeSec` is refreshed, in ms: min(60 s, lifetime / 2). One rule for
 * the allocation, its permissions and its channels (§8 suggests roughly one minute before).
 */
export function refreshLeadMs(lifetimeSec: number): number {
  return Math.min(60, lifetimeSec / 2) * 1000;
}

/** Data held for a peer until its permission is installed. */
export interface QueuedSend {
  readonly peer: TransportAddress;
  readonly data: Uint8Array;
}

/** One permission, keyed by the peer's canonical IP (the port plays no part, §9). */
export interface Permission {
  readonly ip: string;
  state: 'pending' | 'installed' | 'failed';
  /** A CreatePermission (or ChannelBind standing for one) is in flight. */
  inflight: boolean;
  refreshAt: number;
  expiresAt: number;
  queue: QueuedSend[];
}

/** The permissions of one allocation. */
export class PermissionTable {
  readonly #byIp = new Map<string, Permission>();
  readonly #lifetimeSec: number;
  readonly #maxQueued: number;

  /** `lifetimeSec`: what the server grants (300 s by RFC); `maxQueued`: datagrams held per peer while pending. */
  constructor(lifetimeSec: number, maxQueued: number) {
    this.#lifetimeSec = lifetimeSec;
    this.#maxQueued = maxQueued;
  }

  /** The permission for a canonical peer IP. */
  get(ip: string): Permission | undefined {
    return this.#byIp.get(ip);
  }

  /** A new pending permission for a canonical peer IP. */
  add(ip: string): Permission {
    const p: Permission = { ip, state: 'pending', inflight: false, refreshAt: Infinity, expiresAt: Infinity, queue: [] };
    this.#byIp.set(ip, p);
    return p;
  }

  /** Every permission, in the order they were added. */
  values(): IterableIterator<Permission> {
    return this.#byIp.values();
  }

  /** A CreatePermission or ChannelBind succeeded at `now`: installed for one more lifetime. */
  installed(now: number, perm: Permission): void {
    perm.state = 'installed';
    perm.expiresAt = now + this.#lifetimeSec * 1000;
    perm.refreshAt = perm.expiresAt - refreshLeadMs(this.#lifetimeSec);
  }

  /**
   * RFC 8656 §9/§11.1: past its expiry (its refresh still unanswered, or the timer ran late) a permission no longer
   * exists on the server, so data for the peer is queued again until a CreatePermission succeeds. Returns true when
   * that CreatePermission must be sent now.
   */
  expire(now: number, perm: Permission): boolean {
    if (perm.state !== 'installed' || now < perm.expiresAt) return false;
    perm.state = 'pending';
    return !perm.inflight;
  }

  /** Holds `data` for a pending permission (copied). Returns false when the oldest datagram made room for it. */
  enqueue(perm: Permission, peer: TransportAddress, data: Uint8Array): boolean {
    let kept = true;
    if (perm.queue.length >= this.#maxQueued) {
      perm.queue.shift();
      kept = false;
    }
    perm.queue.push({ peer, data: data.slice() });
    return kept;
  }

  /** Hands out the held data (to be sent now that the permission is installed) and empties the queue. */
  takeQueue(perm: Permission): QueuedSend[] {
    const queue = perm.queue;
    perm.queue = [];
    return queue;
  }

  /** A CreatePermission failed: the held data is dropped. Returns how many datagrams that was. */
  failed(perm: Permission): number {
    perm.inflight = false;
    perm.state = 'failed';
    const dropped = perm.queue.length;
    perm.queue = [];
    return dropped;
  }

  /** Drops every queue (the allocation is closing or gone). */
  dropQueues(): void {
    for (const p of this.#byIp.values()) p.queue = [];
  }

  /** Forgets every permission. */
  clear(): void {
    this.#byIp.clear();
  }

  /** Earliest refresh of an installed permission, or its expiry while the refresh is in flight; Infinity if none. */
  nextDeadline(): number {
    let t = Infinity;
    for (const p of this.#byIp.values()) if (p.state === 'installed') t = Math.min(t, p.inflight ? p.expiresAt : p.refreshAt);
    return t;
  }
}
