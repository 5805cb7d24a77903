/**
 * One checklist per data stream (RFC 8445 §6.1.2): pairing rules, sorting, pruning, the per-checklist limit, pair
 * states and the valid list. Pure data structure: no STUN, no time. The agent core drives it.
 * @module
 */
import type { Candidate, LocalCandidate, TcpType } from '../candidates/candidate.js';
import { ipFamily } from '../ip.js';
import { CandidatePair, comparePairs } from './pair.js';

/** Checklist states (RFC 8445 §6.1.2.1). */
export type ChecklistState = 'running' | 'completed' | 'failed';

/** A remote candidate as the core stores it. `mdnsName` marks a candidate signalled as a `.local` name. */
export type RemoteCandidate = Candidate & { readonly mdnsName?: string };

/** Default limit of candidate pairs (RFC 8445 §6.1.2.5). */
export const DEFAULT_CHECKLIST_LIMIT = 100;

function isLinkLocalV6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/** True when `remote` is (or was signalled as) an mDNS name. */
export function isMdnsCandidate(c: RemoteCandidate): boolean {
  return c.mdnsName !== undefined || c.address.toLowerCase().endsWith('.local');
}

/**
 * Whether a local and a remote candidate may form a pair (RFC 8445 §6.1.2.2): same component, same transport, same
 * IP address family, IPv6 link-local only with link-local; TCP candidates by direction (RFC 6544 §6.2: active with
 * passive, so with so). A local relayed candidate is never paired with a remote
 * mDNS candidate (draft-ietf-mmusic-mdns-ice-candidates §3.3.2). An unresolved `.local` address cannot be paired.
 */
export function canPair(local: LocalCandidate, remote: RemoteCandidate): boolean {
  if (local.component !== remote.component || local.transport !== remote.transport) return false;
  if (local.transport === 'tcp' && !tcpTypesPair(local.tcpType, remote.tcpType)) return false;
  const lf = ipFamily(local.base.address);
  const rf = ipFamily(remote.address);
  if (lf === 0 || rf === 0 || lf !== rf) return false;
  if (lf === 6 && isLinkLocalV6(local.base.address) !== isLinkLocalV6(remote.address)) return false;
  if (local.type === 'relay' && isMdnsCandidate(remote)) return false;
  return true;
}

/** RFC 6544 §6.2: tcp-so with tcp-so, tcp-active with tcp-passive and back. A TCP candidate without tcptype never pairs. */
export function tcpTypesPair(local: TcpType | undefined, remote: TcpType | undefined): boolean {
  if (local === 'so') return remote === 'so';
  if (local === 'active') return remote === 'passive';
  if (local === 'passive') return remote === 'active';
  return false;
}

/** Same base (RFC 8445 §6.1.2.4 redundancy: same local base and identical remote candidate). */
function redundant(a: CandidatePair, b: CandidatePair): boolean {
  return (
    a.component === b.component &&
    a.local.transport === b.local.transport &&
    a.local.base.address === b.local.base.address &&
    a.local.base.port === b.local.base.port &&
    a.remote.address === b.remote.address &&
    a.remote.port === b.remote.port
  );
}

/** What `Checklist.insert` did. */
export interface InsertResult {
  /** The pair now in the checklist for that 5-tuple: the new one, or the existing one that made it redundant. */
  readonly pair: CandidatePair;
  readonly added: boolean;
  /** Pairs removed by pruning or by the limit. */
  readonly removed: readonly CandidatePair[];
}

/**
 * A checklist. `pairs` is kept sorted by `comparePairs` (descending priority, deterministic ties). The valid list
 * may hold pairs that are not in `pairs` (RFC 8445 §7.2.5.3.2 case 3).
 */
export class Checklist {
  readonly stream: number;
  /** Number of components of the data stream (lowered when the stream drops its last component). */
  components: number;
  state: ChecklistState = 'running';
  /** Maximum number of pairs: this checklist's share of the checklist set's limit (RFC 8445 §6.1.2.5). */
  limit: number;
  readonly #pairs: CandidatePair[] = [];
  readonly #triggered: CandidatePair[] = [];
  readonly #valid: CandidatePair[] = [];

  constructor(stream: number, components: number, limit: number = DEFAULT_CHECKLIST_LIMIT) {
    this.stream = stream;
    this.components = components;
    this.limit = limit;
  }

  /** The pairs, highest priority first. */
  get pairs(): readonly CandidatePair[] {
    return this.#pairs;
  }

  /** The triggered-check queue (FIFO, RFC 8445 §6.1.4.1). */
  get triggered(): readonly CandidatePair[] {
    return this.#triggered;
  }

  /** The valid list, highest priority first. */
  get valid(): readonly CandidatePair[] {
    return this.#valid;
  }

  /**
   * Inserts a pair whose local candidate is already its base, applying RFC 8445 §6.1.2.4 pruning and the limit of
   * §6.1.2.5 in the trickle form of RFC 8838 §10-11: only Waiting/Frozen existing pairs are pruned; when full, Failed
   * pairs go first, then lower-priority ones; a new pair below every existing one is not added when full.
   */
  insert(pair: CandidatePair): InsertResult {
    const removed: CandidatePair[] = [];
    const twin = this.#pairs.find((p) => redundant(p, pair));
    if (twin) {
      const keepTwin = twin.state !== 'frozen' && twin.state !== 'waiting' ? true : comparePairs(twin, pair) <= 0;
      if (keepTwin) return { pair: twin, added: false, removed };
      this.remove(twin);
      removed.push(twin);
    }
    while (this.#pairs.length >= this.limit) {
      const failed = this.#lastWhere((p) => p.state === 'failed');
      const victim = failed ?? this.#lastWhere((p) => (p.state === 'frozen' || p.state === 'waiting') && comparePairs(p, pair) > 0);
      if (!victim) return { pair, added: false, removed };
      this.remove(victim);
      removed.push(victim);
    }
    this.#pairs.splice(this.#insertionIndex(pair), 0, pair);
    return { pair, added: true, removed };
  }

  /**
   * Sets a new limit and discards pairs beyond it, failed ones first, then the lowest-priority Frozen or Waiting
   * ones (RFC 8445 §6.1.2.5); pairs being checked or valid stay even if that leaves the checklist over. Returns the
   * pairs removed.
   */
  setLimit(limit: number): CandidatePair[] {
    this.limit = limit;
    const removed: CandidatePair[] = [];
    while (this.#pairs.length > limit) {
      const victim = this.#lastWhere((p) => p.state === 'failed') ?? this.#lastWhere((p) => p.state === 'frozen' || p.state === 'waiting');
      if (!victim) break;
      this.remove(victim);
      removed.push(victim);
    }
    return removed;
  }

  #lastWhere(pred: (p: CandidatePair) => boolean): CandidatePair | undefined {
    for (let i = this.#pairs.length - 1; i >= 0; i--) if (pred(this.#pairs[i]!)) return this.#pairs[i];
    return undefined;
  }

  #insertionIndex(pair: CandidatePair): number {
    let lo = 0;
    let hi = this.#pairs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (comparePairs(this.#pairs[mid]!, pair) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Removes a pair from the checklist, the triggered queue and the valid list. */
  remove(pair: CandidatePair): void {
    const i = this.#pairs.indexOf(pair);
    if (i >= 0) this.#pairs.splice(i, 1);
    this.dequeue(pair);
    this.removeValid(pair);
  }

  /** Re-sorts after priorities changed (role switch, RFC 8445 §7.2.5.1 note). */
  resort(): void {
    this.#pairs.sort(comparePairs);
    this.#valid.sort(comparePairs);
  }

  /** Finds the pair for a local base and remote transport address on a component (UDP unless `transport` says). */
  find(component: number, baseAddress: string, basePort: number, remoteAddress: string, remotePort: number, transport: 'udp' | 'tcp' = 'udp'): CandidatePair | undefined {
    return this.#pairs.find(
      (p) =>
        p.component === component &&
        p.local.transport === transport &&
        p.local.base.address === baseAddress &&
        p.local.base.port === basePort &&
        p.remote.address === remoteAddress &&
        p.remote.port === remotePort,
    );
  }

  /** Appends to the triggered-check queue unless already queued (RFC 8445 §7.3.1.4). */
  enqueueTriggered(pair: CandidatePair): void {
    if (!this.#triggered.includes(pair)) this.#triggered.push(pair);
  }

  /** Removes a pair from the triggered-check queue. */
  dequeue(pair: CandidatePair): void {
    const i = this.#triggered.indexOf(pair);
    if (i >= 0) this.#triggered.splice(i, 1);
  }

  /** Pops the head of the triggered-check queue. */
  shiftTriggered(): CandidatePair | undefined {
    return this.#triggered.shift();
  }

  /** Adds a pair to the valid list (nominated flag false when first added, RFC 8445 §7.2.5.3.2). */
  addValid(pair: CandidatePair): void {
    if (pair.valid) return;
    pair.valid = true;
    if (pair.nomination === 'nominated') pair.nomination = 'none';
    let i = 0;
    while (i < this.#valid.length && comparePairs(this.#valid[i]!, pair) < 0) i++;
    this.#valid.splice(i, 0, pair);
  }

  /** Removes a pair from the valid list (RFC 8445 §7.2.5.3.4 on a failed nomination). */
  removeValid(pair: CandidatePair): void {
    const i = this.#valid.indexOf(pair);
    if (i >= 0) this.#valid.splice(i, 1);
    pair.valid = false;
    if (pair.nomination === 'nominated') pair.nomination = 'none';
  }

  /** Highest-priority valid pair of a component (optionally only nominated ones). */
  bestValid(component: number, nominatedOnly = false): CandidatePair | undefined {
    return this.#valid.find((p) => p.component === component && (!nominatedOnly || p.nominated));
  }

  /** Number of pairs in `state`. */
  count(state: CandidatePair['state']): number {
    let n = 0;
    for (const p of this.#pairs) if (p.state === state) n++;
    return n;
  }

  /** Highest-priority Waiting pair, lowest component first among equal priorities (RFC 8445 §6.1.4.2 step 3). */
  firstWaiting(): CandidatePair | undefined {
    return this.#pairs.find((p) => p.state === 'waiting');
  }

  /**
   * RFC 8445 §7.2.5.4 (with RFC 8838 §8): Failed when every pair is Failed or Succeeded, some component has no valid
   * pair and no more candidates can come (`mayFail`); `'valid-for-all'` when every component (of the first
   * `components`, default all) has a valid pair.
   */
  evaluate(mayFail: boolean, components: number = this.components): 'valid-for-all' | 'failed' | 'running' {
    let allValid = true;
    for (let c = 1; c <= components; c++) if (!this.bestValid(c)) allValid = false;
    if (allValid) return 'valid-for-all';
    const open = this.#pairs.some((p) => p.state === 'frozen' || p.state === 'waiting' || p.state === 'in-progress');
    if (!open && mayFail) return 'failed';
    return 'running';
  }
}

/**
 * Initial pair states for a checklist set (RFC 8445 §6.1.2.6): all Frozen, then for each foundation exactly one
 * pair Waiting: the first in checklist-set order, lowest component then highest priority.
 */
export function computeInitialStates(checklists: readonly Checklist[]): void {
  const seen = new Set<string>();
  for (const cl of checklists) {
    for (const p of cl.pairs) if (p.state === 'waiting') p.state = 'frozen';
    const ordered = [...cl.pairs].sort((a, b) => unfreezeOrder(a, 0, b, 0));
    for (const p of ordered) {
      if (p.state !== 'frozen' || seen.has(p.foundation)) continue;
      seen.add(p.foundation);
      p.state = 'waiting';
    }
  }
}

/**
 * Order in which pairs compete to be unfrozen first for their foundation (RFC 8445 §6.1.2.6 step 4, RFC 8838 §12):
 * checklist-set order, then lowest component, then highest priority.
 */
function unfreezeOrder(a: CandidatePair, ai: number, b: CandidatePair, bi: number): number {
  return ai - bi || a.component - b.component || comparePairs(a, b);
}

/**
 * State of a pair added to a checklist set that may already be running (RFC 8838 §12, which reduces to RFC 8445
 * §6.1.2.6 when pairs are added best-first): Waiting when a pair of its foundation already Succeeded (rule 2) or
 * when it is the topmost pair of its foundation in checklist-set order, lowest component, highest priority
 * (rule 1); Frozen otherwise (rule 3). `pair` must already be in checklist `checklists[index]`.
 */
export function stateForNewPair(pair: CandidatePair, index: number, checklists: readonly Checklist[]): 'waiting' | 'frozen' {
  let top = true;
  checklists.forEach((cl, i) => {
    for (const p of cl.pairs) {
      if (p === pair || p.foundation !== pair.foundation) continue;
      if (unfreezeOrder(p, i, pair, index) < 0) top = false;
    }
  });
  const succeeded = checklists.some((cl) => cl.pairs.some((p) => p !== pair && p.foundation === pair.foundation && p.state === 'succeeded'));
  return succeeded || top ? 'waiting' : 'frozen';
}

/** RFC 8445 §7.2.5.3.3: every Frozen pair of `foundation` in every checklist becomes Waiting. Returns them. */
export function unfreezeFoundation(foundation: string, checklists: readonly Checklist[]): CandidatePair[] {
  const out: CandidatePair[] = [];
  for (const cl of checklists) {
    for (const p of cl.pairs) {
      if (p.state === 'frozen' && p.foundation === foundation) {
        p.state = 'waiting';
        out.push(p);
      }
    }
  }
  return out;
}
