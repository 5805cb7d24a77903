/**
 * Redundant candidate elimination (RFC 8445 §5.1.3). Pure.
 * @module
 */
import { canonicalIp } from '../ip.js';
import type { LocalCandidate } from './candidate.js';

/**
 * The identity §5.1.3 compares: the candidate's transport address as signalled (an mDNS name when the address is
 * hidden: draft-ietf-mmusic-mdns-ice-candidates §3.1.2.2 says a server-reflexive IP candidate is then not redundant
 * with its mDNS host candidate), its base, transport and component.
 */
export function redundancyKey(c: LocalCandidate): string {
  const addr = c.mdnsName ?? canonicalIp(c.address);
  return `${c.component}|${c.transport}|${addr}|${c.port}|${canonicalIp(c.base.address)}|${c.base.port}`;
}

/**
 * RFC 8445 §5.1.3: a candidate is redundant iff its transport address and base equal those of another candidate;
 * the one with the lower priority is eliminated. Keeps the input order of the survivors (ties keep the first).
 */
export function eliminateRedundant<C extends LocalCandidate>(candidates: readonly C[]): C[] {
  const best = new Map<string, C>();
  for (const c of candidates) {
    const k = redundancyKey(c);
    const prev = best.get(k);
    if (prev === undefined || c.priority > prev.priority) best.set(k, c);
  }
  const keep = new Set(best.values());
  return candidates.filter((c) => keep.has(c));
}

/** True when `candidate` is redundant with one of `existing` of higher or equal priority (trickle-time check). */
export function isRedundantWith(candidate: LocalCandidate, existing: Iterable<LocalCandidate>): boolean {
  const k = redundancyKey(candidate);
  for (const e of existing) if (e !== candidate && redundancyKey(e) === k && e.priority >= candidate.priority) return true;
  return false;
}
