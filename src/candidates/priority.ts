/**
 * Candidate priorities (RFC 8445 §5.1.2) and local preferences for multi-homed and dual-stack hosts (RFC 8421).
 * Pure functions.
 * @module
 */
import { canonicalIp, ipFamily } from '../ip.js';
import type { CandidateType } from './candidate.js';

/** Type preference per candidate type, 0..126. */
export interface TypePreferences {
  readonly host: number;
  readonly prflx: number;
  readonly srflx: number;
  readonly relay: number;
}

/** RFC 8445 §5.1.2.2: the recommended type preferences. */
export const DEFAULT_TYPE_PREFERENCES: TypePreferences = Object.freeze({ host: 126, prflx: 110, srflx: 100, relay: 0 });

/** Highest local preference (RFC 8445 §5.1.2.1: 0..65535). */
export const MAX_LOCAL_PREFERENCE = 65535;

/**
 * Checks a set of type preferences against RFC 8445 §5.1.2.1: integers 0..126, different for different types,
 * peer-reflexive above server-reflexive. Throws `RangeError` otherwise.
 */
export function validateTypePreferences(p: TypePreferences): void {
  const values = [p.host, p.prflx, p.srflx, p.relay];
  for (const v of values) {
    if (!Number.isInteger(v) || v < 0 || v > 126) throw new RangeError(`type preference ${v} is not an integer 0..126`);
  }
  if (new Set(values).size !== 4) throw new RangeError('type preferences must differ between candidate types');
  if (p.prflx <= p.srflx) throw new RangeError('RFC 8445 §5.1.2.1: the peer-reflexive type preference must exceed the server-reflexive one');
}

/**
 * RFC 8445 §5.1.2.1: priority = 2^24 * type preference + 2^8 * local preference + (256 - component ID).
 * Throws `RangeError` for out-of-range inputs or a zero result (relay, local preference 0, component 256).
 */
export function computePriority(typePreference: number, localPreference: number, component: number): number {
  if (!Number.isInteger(typePreference) || typePreference < 0 || typePreference > 126) {
    throw new RangeError(`type preference ${typePreference} is not 0..126`);
  }
  if (!Number.isInteger(localPreference) || localPreference < 0 || localPreference > MAX_LOCAL_PREFERENCE) {
    throw new RangeError(`local preference ${localPreference} is not 0..65535`);
  }
  if (!Number.isInteger(component) || component < 1 || component > 256) throw new RangeError(`component ${component} is not 1..256`);
  const p = typePreference * 0x1000000 + localPreference * 0x100 + (256 - component);
  if (p < 1) throw new RangeError('priority must be at least 1');
  return p;
}

/** Priority of a candidate of `type` with the given local preference and component. */
export function candidatePriority(
  type: CandidateType,
  localPreference: number,
  component: number,
  preferences: TypePreferences = DEFAULT_TYPE_PREFERENCES,
): number {
  return computePriority(preferences[type], localPreference, component);
}

/** Splits a priority into its three parts (inverse of `computePriority`). */
export function splitPriority(priority: number): { typePreference: number; localPreference: number; component: number } {
  return {
    typePreference: Math.floor(priority / 0x1000000),
    localPreference: Math.floor(priority / 0x100) & 0xffff,
    component: 256 - (priority & 0xff),
  };
}

/** A local IP address as input to `localPreferences`. */
export interface LocalAddressInput {
  readonly address: string;
  /**
   * RFC 8421 §3/§5: addresses of an interface known to be unreliable go to the end, after every reliable address,
   * and are not intermingled.
   */
  readonly unreliable?: boolean;
}

/** Options of `localPreferences`. */
export interface LocalPreferenceOptions {
  /**
   * Gap between consecutive addresses' local preferences (default 128). The gap leaves room for a per-server slot
   * (`localPreference - slot`), so several STUN/TURN servers on one base still get unique preferences
   * (RFC 8445 §5.1.2.2).
   */
  readonly stride?: number;
}

/**
 * Orders addresses for RFC 8421 §4: IPv6 first, with a head start of Hi = (N4 + N6) / N4 IPv6 addresses, then the
 * two families intermingled in proportion so that neither is starved. Unreliable addresses follow, in input order.
 * Within a family the input order (the caller's interface preference) is kept. Duplicates (same canonical IP) are
 * dropped; input must be IP literals (`RangeError` otherwise).
 */
export function orderLocalAddresses(addresses: readonly (string | LocalAddressInput)[]): string[] {
  const seen = new Set<string>();
  const v4: string[] = [];
  const v6: string[] = [];
  const unreliable: string[] = [];
  for (const item of addresses) {
    const { address, unreliable: bad } = typeof item === 'string' ? { address: item, unreliable: false } : item;
    const family = ipFamily(address);
    if (family === 0) throw new RangeError(`not an IP address: ${address}`);
    const ip = canonicalIp(address);
    if (seen.has(ip)) continue;
    seen.add(ip);
    (bad ? unreliable : family === 6 ? v6 : v4).push(ip);
  }
  const out: string[] = [];
  const n4 = v4.length;
  const n6 = v6.length;
  // RFC 8421 §4: "Hi = (N_4 + N_6) / N_4" IPv6 addresses before the first IPv4 one.
  const head = n4 === 0 ? n6 : Math.min(n6, Math.floor((n4 + n6) / n4));
  let i6 = 0;
  let i4 = 0;
  while (i6 < head) out.push(v6[i6++]!);
  // Then spread what is left evenly: the k-th remaining address of a family sits at (k + 1/2) / count of the way
  // through the rest (a midpoint Bresenham merge); IPv4 wins ties, since IPv6 had the head start.
  const r6 = n6 - head;
  while (i6 < n6 || i4 < n4) {
    const done6 = i6 - head;
    const take6 = i4 >= n4 || (i6 < n6 && (2 * done6 + 1) * n4 < (2 * i4 + 1) * r6);
    out.push(take6 ? v6[i6++]! : v4[i4++]!);
  }
  out.push(...unreliable);
  return out;
}

/**
 * Local preferences for a host's addresses (RFC 8445 §5.1.2.1, RFC 8421): 65535 for the first address of
 * `orderLocalAddresses`, then decreasing by `stride`. Unique per address. A single address gets 65535.
 * Keys are canonical IP text.
 */
export function localPreferences(
  addresses: readonly (string | LocalAddressInput)[],
  options: LocalPreferenceOptions = {},
): Map<string, number> {
  const stride = options.stride ?? 128;
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError('stride must be a positive integer');
  const ordered = orderLocalAddresses(addresses);
  if ((ordered.length - 1) * stride > MAX_LOCAL_PREFERENCE) {
    throw new RangeError(`${ordered.length} addresses do not fit 0..65535 with stride ${stride}`);
  }
  return new Map(ordered.map((a, i) => [a, MAX_LOCAL_PREFERENCE - i * stride]));
}

/**
 * Makes `priority` unique among `taken` (priorities already used by this agent for the same component, RFC 8445
 * §5.1.2) by lowering the local preference one step at a time (raising it once 0 is reached); the type preference
 * and component stay. Returns
 * the priority to use (not added to `taken`). Throws `RangeError` when the type's range is exhausted.
 */
export function uniquePriority(priority: number, taken: ReadonlySet<number>): number {
  const { typePreference, localPreference, component } = splitPriority(priority);
  const at = (lp: number) => typePreference * 0x1000000 + lp * 0x100 + (256 - component);
  // Downwards first (keeps earlier candidates ahead), then upwards when the bottom of the range is full.
  for (let lp = localPreference; lp >= 0; lp--) if (at(lp) >= 1 && !taken.has(at(lp))) return at(lp);
  for (let lp = localPreference + 1; lp <= MAX_LOCAL_PREFERENCE; lp++) if (!taken.has(at(lp))) return at(lp);
  throw new RangeError('no free priority left for this type and component');
}

/**
 * RFC 6544 §4.2 direction preferences (0..7) of host (and relayed) TCP candidates: active 6, passive 4,
 * simultaneous-open 2.
 */
export const TCP_DIRECTION_PREFERENCES = Object.freeze({ active: 6, passive: 4, so: 2 });

/**
 * RFC 6544 §4.2: a TCP candidate's local preference, `2^13 * direction-pref + other-pref`. The other-pref (0..8191)
 * is the address's RFC 8421 local preference (`localPreferences`) scaled down by 8, so TCP candidates keep the same
 * interleaved address order as UDP ones, one address 8191 (the single-address value the RFC asks for).
 */
export function tcpLocalPreference(tcpType: 'active' | 'passive' | 'so', addressPreference: number): number {
  if (!Number.isInteger(addressPreference) || addressPreference < 0 || addressPreference > MAX_LOCAL_PREFERENCE) {
    throw new RangeError(`local preference ${addressPreference} is not 0..65535`);
  }
  return TCP_DIRECTION_PREFERENCES[tcpType] * 0x2000 + (addressPreference >>> 3);
}

/**
 * Type preference of a TCP candidate: one below its type's UDP preference (RFC 6544 §4.2 "changing type preference
 * values by one ... is enough" when the candidate type matters more than the transport). UDP wins between
 * candidates of one type, as RFC 6544 recommends for RTP, while a TCP host candidate still ranks above a UDP
 * server-reflexive one.
 */
export function tcpTypePreference(type: CandidateType, preferences: TypePreferences = DEFAULT_TYPE_PREFERENCES): number {
  return Math.max(0, preferences[type] - 1);
}
