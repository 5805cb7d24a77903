/**
 * A cap on candidate pairs aimed at any one remote IP address, shared by every agent of a checklist set (an
 * `IceSdpSession` runs one agent per transport). RFC 8445 §19.5.1: a peer that signals many candidates naming one
 * third party turns our checks into an amplifier; the set-wide pair limit of §6.1.2.5 bounds the total (100 pairs,
 * 7 transmissions each), this bounds what one target gets. A real peer has a handful of candidates per address.
 * Pure data: no time, no IO.
 * @module
 */

/** Default most pairs to one remote IP address across a checklist set. */
export const DEFAULT_REMOTE_ADDRESS_PAIR_LIMIT = 32;

/** Counts one member's pairs whose remote candidate has IP address `ip` (canonical form). */
export type PairsToAddress = (ip: string) => number;

/**
 * The shared budget. Each agent joins with a function that counts its own live pairs to an address, so the total
 * is always read from the checklists themselves and can never drift from them (pairs leave checklists in many
 * ways: pruning, the limit, restarts, close).
 */
export class RemoteAddressBudget {
  /** Most pairs to one remote IP address across every member. */
  readonly limit: number;
  readonly #members = new Set<PairsToAddress>();

  /** @param limit most pairs to one remote IP address (integer >= 1, default 32). */
  constructor(limit: number = DEFAULT_REMOTE_ADDRESS_PAIR_LIMIT) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('remoteAddressPairLimit must be an integer >= 1');
    this.limit = limit;
  }

  /** Adds a member; the returned function removes it (call it when the agent closes). */
  join(count: PairsToAddress): () => void {
    this.#members.add(count);
    return () => {
      this.#members.delete(count);
    };
  }

  /** Live pairs to `ip` across every member. */
  pairsTo(ip: string): number {
    let n = 0;
    for (const count of this.#members) n += count(ip);
    return n;
  }
}
