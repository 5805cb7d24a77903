/**
 * The ICE candidate as a value (RFC 8445 §5.1, grammar in RFC 8839 §5.1).
 * @module
 */
import type { TransportAddress } from '../types.js';

/** Candidate types (RFC 8445 §5.1.1). */
export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';

/** ICE-TCP candidate direction (RFC 6544 §4.5). Parsed and kept now; used when ICE-TCP lands. */
export type TcpType = 'active' | 'passive' | 'so';

/** A candidate as signalled (what `a=candidate` carries). */
export interface Candidate {
  readonly foundation: string;
  /** 1 = RTP, 2 = RTCP; 1..256. */
  readonly component: number;
  /** Lower-case transport; the grammar accepts `UDP` and normalises it. */
  readonly transport: 'udp' | 'tcp';
  /**
   * The transport token exactly as it was received when its spelling differs from `transport` (e.g. `'UDP'` from
   * Firefox or libnice). Set only by the parser, so that parse then format gives back the line unchanged; the
   * formatter uses it when it still names `transport` case-insensitively.
   */
  readonly transportText?: string;
  /** 1..2^31-1. */
  readonly priority: number;
  /** IP literal, or a `<uuid>.local` mDNS name. */
  readonly address: string;
  readonly port: number;
  readonly type: CandidateType;
  readonly relatedAddress?: string;
  readonly relatedPort?: number;
  readonly tcpType?: TcpType;
  /**
   * Extension attributes in their original order (generation, ufrag, network-id, network-cost and unknown ones),
   * kept so that parse then format is the identity.
   */
  readonly extensions?: readonly (readonly [name: string, value: string])[];
}

/** A candidate this agent gathered: the signalled record plus what the agent needs to send from it. */
export interface LocalCandidate extends Candidate {
  /**
   * RFC 8445 §5.1.1: the base. A host candidate is its own base, a server-reflexive one has its host's address as
   * base, and a relayed candidate is its own base.
   */
  readonly base: TransportAddress;
  /** The host socket packets from this candidate leave through (for a relay: the socket talking to the TURN server). */
  readonly socket: TransportAddress;
  /** For relayed candidates: the TURN server address that packets are wrapped for. */
  readonly relayServer?: TransportAddress;
  /** When mDNS hides the address: the `<uuid>.local` name signalled instead of `address`. */
  readonly mdnsName?: string;
}

/** The transport address of a candidate. */
export function candidateAddress(c: Candidate): TransportAddress {
  return { address: c.address, port: c.port };
}
