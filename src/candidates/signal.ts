/**
 * From a gathered candidate to what is signalled.
 * @module
 */
import { arg, is } from '../arguments.js';
import type { Candidate, LocalCandidate } from './candidate.js';

/**
 * The signalled form of a local candidate: the plain {@link Candidate} record, with the mDNS name in place of the
 * address when the address is hidden (draft-ietf-mmusic-mdns-ice-candidates §3.1.1 step 6). Agent-internal fields
 * (base, socket, relay server) are left out.
 */
export function signalledCandidate(c: Candidate | LocalCandidate): Candidate {
  arg(c, 'candidate', is.record());
  const mdnsName = (c as Partial<LocalCandidate>).mdnsName;
  return {
    foundation: c.foundation,
    component: c.component,
    transport: c.transport,
    ...(c.transportText !== undefined ? { transportText: c.transportText } : {}),
    priority: c.priority,
    address: mdnsName ?? c.address,
    port: c.port,
    type: c.type,
    ...(c.relatedAddress !== undefined ? { relatedAddress: c.relatedAddress } : {}),
    ...(c.relatedPort !== undefined ? { relatedPort: c.relatedPort } : {}),
    ...(c.tcpType !== undefined ? { tcpType: c.tcpType } : {}),
    ...(c.extensions !== undefined ? { extensions: c.extensions } : {}),
  };
}
