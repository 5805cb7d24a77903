/**
 * The default candidate and the default destination written in `c=`, `m=` and `a=rtcp`.
 *
 * RFC 5245 §4.1.4 (kept in spirit by RFC 8445 §5.2, which leaves the choice to the agent): the default candidate is
 * the one most likely to reach a peer that does not speak ICE: relayed, else server-reflexive, else host. With no
 * candidate yet (trickle), RFC 8840 §4.1.1/§4.1.3 and RFC 8839 §4.3.1 use `0.0.0.0`/`::` and port 9 and forbid
 * `a=rtcp`. An mDNS host candidate never goes into `c=` (draft-ietf-mmusic-mdns-ice-candidates §3.1.2.4): when it
 * would be the default, the same `0.0.0.0`/9 placeholder is used.
 * @module
 */
import { signalledCandidate } from '../candidates/signal.js';
import type { Candidate, CandidateType, LocalCandidate } from '../candidates/candidate.js';
import { candidateAddressKind } from '../candidates/grammar.js';
import { canonicalIp } from '../ip.js';
import type { TransportAddress } from '../types.js';

/** RFC 8840 §4.1.1: the discard port used as the default when no candidate is known yet. */
export const PLACEHOLDER_PORT = 9;

/** `0.0.0.0` or `::` for the placeholder default destination. */
export function placeholderAddress(family: 4 | 6): string {
  return family === 6 ? '::' : '0.0.0.0';
}

/** True for the `0.0.0.0`/`::` port 9 default destination (RFC 8839 §4.2.5 exception 2). */
export function isPlaceholderDestination(a: TransportAddress): boolean {
  return a.port === PLACEHOLDER_PORT && (a.address === '0.0.0.0' || canonicalIp(a.address) === '::');
}

/** Options of the default candidate choice. */
export interface DefaultCandidateOptions {
  /**
   * RFC 8445 §5.2: dual-stack hosts should let the administrator choose the family of the default candidate.
   * Default 4 (most SIP peers without ICE are IPv4 only).
   */
  readonly preferFamily?: 4 | 6;
  /** Only candidates of this transport qualify (RFC 8839 §4.3.2: the `m=` proto fixes it). Default `'udp'`. */
  readonly transport?: 'udp' | 'tcp';
}

const TYPE_RANK: Record<CandidateType, number> = { relay: 3, srflx: 2, host: 1, prflx: 0 };

function family(address: string): 0 | 4 | 6 {
  const k = candidateAddressKind(address);
  return k === 'ipv4' ? 4 : k === 'ipv6' ? 6 : 0;
}

/**
 * The signalled form of a candidate: a `LocalCandidate` loses its base/socket/relay fields, and an mDNS-protected
 * host candidate is signalled with its `.local` name instead of its address.
 */
export function toSignalledCandidate(c: Candidate | LocalCandidate): Candidate {
  return signalledCandidate(c);
}

/**
 * Picks the default candidate of `component` among signalled candidates: a candidate whose address is an IP
 * literal (never an mDNS name), of the wanted transport, preferring the configured family, then relay over srflx
 * over host (over prflx), then the higher priority. Undefined when none qualifies.
 */
export function chooseDefaultCandidate(
  candidates: readonly Candidate[],
  component: number,
  options: DefaultCandidateOptions = {},
): Candidate | undefined {
  const want = options.preferFamily ?? 4;
  const transport = options.transport ?? 'udp';
  let best: Candidate | undefined;
  let bestKey: [number, number, number] | undefined;
  for (const c of candidates) {
    if (c.component !== component || c.transport !== transport) continue;
    const fam = family(c.address);
    if (fam === 0) continue; // mDNS names and FQDNs never go into c=
    // TCP active candidates have no listening port: a peer without ICE cannot reach them (RFC 6544 §4.5).
    if (c.tcpType === 'active') continue;
    const key: [number, number, number] = [fam === want ? 1 : 0, TYPE_RANK[c.type], c.priority];
    if (!bestKey || key[0] > bestKey[0] || (key[0] === bestKey[0] && (key[1] > bestKey[1] || (key[1] === bestKey[1] && key[2] > bestKey[2])))) {
      best = c;
      bestKey = key;
    }
  }
  return best;
}

/** The default destination of one `m=` section. */
export interface DefaultDestination {
  /** What goes into `c=` and the `m=` port. */
  readonly rtp: TransportAddress;
  /** What goes into `a=rtcp`; undefined when `a=rtcp` must be omitted (rtcp-mux, no RTCP candidate, placeholder). */
  readonly rtcp?: TransportAddress;
  /** The candidate behind `rtp`; undefined for the placeholder. */
  readonly rtpCandidate?: Candidate;
  /** The candidate behind `rtcp`. */
  readonly rtcpCandidate?: Candidate;
  /** True when `rtp` is the `0.0.0.0`/`::` port 9 placeholder. */
  readonly placeholder: boolean;
}

/** Options of `defaultDestination`. */
export interface DefaultDestinationOptions extends DefaultCandidateOptions {
  /** `a=rtcp-mux` is in use: no separate RTCP default (RFC 5761). */
  readonly rtcpMux?: boolean;
}

/** The transport an `m=` proto implies for candidates: TCP-based protos (RFC 4571 `TCP/...`) use tcp, others udp. */
export function transportOfProto(protocol: string): 'udp' | 'tcp' {
  return /^TCP(\/|$)/i.test(protocol) ? 'tcp' : 'udp';
}

/**
 * The default destination for a stream whose (signalled) candidates are `candidates`. With no usable component 1
 * candidate (none yet, only mDNS names, none of the `m=` transport) the result is the placeholder `0.0.0.0`/`::`
 * port 9 without `a=rtcp` (RFC 8840 §4.1.1, RFC 8839 §4.3.2, mDNS draft §3.1.2.4). The RTCP default prefers the
 * component 2 candidate of the same foundation as the RTP default (same type and base).
 */
export function defaultDestination(candidates: readonly Candidate[], options: DefaultDestinationOptions = {}): DefaultDestination {
  const rtpCandidate = chooseDefaultCandidate(candidates, 1, options);
  if (!rtpCandidate) {
    return { rtp: { address: placeholderAddress(options.preferFamily ?? 4), port: PLACEHOLDER_PORT }, placeholder: true };
  }
  const rtp = { address: rtpCandidate.address, port: rtpCandidate.port };
  if (options.rtcpMux) return { rtp, rtpCandidate, placeholder: false };
  const sameFoundation = candidates.filter(
    (c) => c.component === 2 && c.foundation === rtpCandidate.foundation && c.transport === rtpCandidate.transport && family(c.address) === family(rtpCandidate.address),
  );
  const rtcpCandidate = chooseDefaultCandidate(sameFoundation, 2, options) ?? chooseDefaultCandidate(candidates, 2, options);
  if (!rtcpCandidate) return { rtp, rtpCandidate, placeholder: false };
  return { rtp, rtpCandidate, rtcp: { address: rtcpCandidate.address, port: rtcpCandidate.port }, rtcpCandidate, placeholder: false };
}
