/**
 * Value types shared by every layer of icewire. Plain readonly records: no classes, no IO.
 * @module
 */
import { canonicalIp } from './ip.js';

/** An IP address and port. `address` is a literal IPv4/IPv6 address or, for mDNS candidates, a `.local` name. */
export interface TransportAddress {
  readonly address: string;
  readonly port: number;
}

/** Transport protocol of a socket or candidate. */
export type TransportProtocol = 'udp' | 'tcp' | 'tls';

/**
 * A datagram crossing the sans-IO boundary. `local` is always the base address of the socket it was (or must be)
 * sent from; a relayed send therefore leaves as a TURN-wrapped datagram from the base to the TURN server.
 */
export interface Datagram {
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  readonly data: Uint8Array;
  /** Defaults to `'udp'`. */
  readonly transport?: TransportProtocol;
  /**
   * Set on the first send of a new gathering or connectivity-check transaction, the sends RFC 8445 §14.2 paces
   * process-wide (retransmissions, answers, consent checks and keepalives are not, §14.1). The edge stamps the
   * pacer's grant with the time the datagram really leaves.
   */
  readonly paced?: true;
}

/** Source of randomness injected into every core machine. The Node edge backs it with `crypto.randomBytes`. */
export interface RandomSource {
  /** Returns `n` fresh random bytes. */
  bytes(n: number): Uint8Array;
}

/** ICE role (RFC 8445 §6.1.1). */
export type IceRole = 'controlling' | 'controlled';

/** Formats an address as `ip:port`, bracketing IPv6. */
export function formatAddress(a: TransportAddress): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** True when both addresses name the same IP and port (IPv6 compared in canonical form). */
export function sameAddress(a: TransportAddress, b: TransportAddress): boolean {
  if (a.port !== b.port) return false;
  // Equal text is the per-packet case. Text without ':' (IPv4, names) is already canonical, so only two differing
  // IPv6 spellings pay for canonicalisation (memoised in ip.ts).
  if (a.address === b.address) return true;
  return a.address.includes(':') && b.address.includes(':') && canonicalIp(a.address) === canonicalIp(b.address);
}
