/**
 * ICE mismatch (RFC 8839 §4.2.5, §5.3, §8): a stream whose SDP carries ICE attributes but whose default destination
 * (`c=`/`m=`, and `a=rtcp` for RTCP) is none of its candidates. This is the signature of a SIP-aware but ICE-unaware
 * middlebox (an ALG, an SBC, a media relay such as rtpproxy) that rewrote the default destination: the answer then
 * carries `a=ice-mismatch` and the stream runs without ICE, towards the signalled address.
 *
 * Exceptions that are never a mismatch: the `0.0.0.0`/`::` port 9 placeholder (RFC 8839 §4.2.5 item 2; RFC 8840
 * §4.1.2: trickled candidates never match it) and a default destination given as an FQDN (item 4).
 * @module
 */
import type { Candidate } from '../candidates/candidate.js';
import { candidateAddressKind } from '../candidates/grammar.js';
import { canonicalIp } from '../ip.js';
import type { TransportAddress } from '../types.js';
import { isPlaceholderDestination, transportOfProto } from './default-candidate.js';
import { mediaHasIce, transportIndexOf, type IceDescription, type IceMediaDescription } from './ice-attributes.js';

/** The default destinations a stream signals (RFC 8839 §4.2.5: `c=` + `m=` for RTP, `a=rtcp` for RTCP). */
export interface SignalledDestination {
  /** `c=` address and `m=` port; undefined when the SDP has no `c=` line for the stream. */
  readonly rtp?: TransportAddress;
  /** `a=rtcp`, or the RFC 3605 implicit RTP port + 1 when RTCP is in use without `a=rtcp`; undefined with rtcp-mux. */
  readonly rtcp?: TransportAddress;
  /** True when `rtcp` was not signalled but implied (RTP port + 1). */
  readonly rtcpImplicit: boolean;
  /** Transport of the `m=` proto. */
  readonly transport: 'udp' | 'tcp';
}

/** Reads the default destination of a stream. */
export function signalledDestination(m: IceMediaDescription): SignalledDestination {
  const transport = transportOfProto(m.protocol);
  if (m.connection === undefined) return { rtcpImplicit: false, transport };
  const rtp = { address: m.connection, port: m.port };
  if (m.rtcp) return { rtp, rtcp: m.rtcp, rtcpImplicit: false, transport };
  if (m.rtcpMux) return { rtp, rtcpImplicit: false, transport };
  return { rtp, rtcp: { address: m.connection, port: m.port + 1 }, rtcpImplicit: true, transport };
}

/** Outcome of the mismatch test for one stream. */
export type MismatchVerdict =
  | { readonly mismatch: false; readonly reason: 'match' | 'placeholder' | 'fqdn' | 'no-ice' | 'rejected' | 'no-connection' }
  | { readonly mismatch: true; readonly component: 1 | 2; readonly destination: TransportAddress };

function sameIp(a: string, b: string): boolean {
  return a === b || canonicalIp(a) === canonicalIp(b);
}

function listed(candidates: readonly Candidate[], component: number, dest: TransportAddress, transport: 'udp' | 'tcp'): boolean {
  return candidates.some((c) => c.component === component && c.transport === transport && c.port === dest.port && sameIp(c.address, dest.address));
}

/**
 * RFC 8839 §4.2.5: tests whether the default destination of stream `index` appears among its candidates. A bundled
 * `m=` section without candidates of its own is tested against those of the m-section whose transport it shares.
 * RTCP is tested when `a=rtcp` is present, or when it is implied and the stream has component 2 candidates.
 */
export function detectIceMismatch(desc: IceDescription, index: number): MismatchVerdict {
  const m = desc.media[index];
  if (!m) throw new RangeError(`no m-section ${index}`);
  if (m.port === 0) return { mismatch: false, reason: 'rejected' };
  if (!mediaHasIce(m)) return { mismatch: false, reason: 'no-ice' };
  const dest = signalledDestination(m);
  if (!dest.rtp) return { mismatch: false, reason: 'no-connection' };
  if (isPlaceholderDestination(dest.rtp)) return { mismatch: false, reason: 'placeholder' };
  if (candidateAddressKind(dest.rtp.address) === 'fqdn' || candidateAddressKind(dest.rtp.address) === 'mdns') {
    return { mismatch: false, reason: 'fqdn' };
  }
  let candidates = m.candidates;
  if (candidates.length === 0) {
    const owner = desc.media[transportIndexOf(desc, index)];
    if (owner && owner.index !== index) candidates = owner.candidates;
  }
  if (!listed(candidates, 1, dest.rtp, dest.transport)) return { mismatch: true, component: 1, destination: dest.rtp };
  const hasRtcpCandidates = candidates.some((c) => c.component === 2);
  // RFC 8839 §4.2.2: RTCP has candidates of its own only when it has a port of its own. Under rtcp-mux RTCP rides on
  // component 1, and an `a=rtcp` naming the RTP destination (what browsers and SIP.js put there) is no second one.
  const rtcpMuxed = m.rtcpMux && (!hasRtcpCandidates || (dest.rtcp !== undefined && dest.rtcp.port === dest.rtp.port && sameIp(dest.rtcp.address, dest.rtp.address)));
  if (dest.rtcp && !rtcpMuxed && !isPlaceholderDestination(dest.rtcp) && (!dest.rtcpImplicit || hasRtcpCandidates)) {
    if (!listed(candidates, 2, dest.rtcp, dest.transport)) return { mismatch: true, component: 2, destination: dest.rtcp };
  }
  return { mismatch: false, reason: 'match' };
}
