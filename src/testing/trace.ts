/**
 * The packet trace of a virtual network: one entry per send, NAT translation, delivery or drop, and the reasons a
 * packet is dropped. `formatTrace` turns a run into text for snapshots and for comparing two runs.
 * @module
 */
import { formatAddress, type TransportAddress } from '../types.js';
import type { NatDropReason } from './nat.js';

/** Why the network dropped a packet. */
export type DropReason =
  /** Random loss from the link conditions. */
  | 'loss'
  /** Larger than the network's MTU. */
  | 'mtu'
  /** The datagram's `local` is not an address of the sending host (or has a bad port). */
  | 'bad-source'
  /** Transport other than UDP or TCP, or TCP bytes on no open connection. */
  | 'unsupported-transport'
  /** A TCP connection attempt nothing accepted (answered with a reset). */
  | 'tcp-refused'
  /** No host or NAT owns the destination address, or it is not an IP literal. */
  | 'no-route'
  /** The sending or receiving host is offline (`host.online = false`). */
  | 'host-down'
  /** Reached the host, but no attached machine claimed it (`handleReceive` returned false). */
  | 'unclaimed'
  /** A NAT refused to hairpin (hairpinning disabled). */
  | 'nat-hairpin-disabled'
  /** Too many hops (a routing loop through nested NATs). */
  | 'ttl'
  | NatDropReason;

/** One line of the trace: a packet sent, translated by a NAT, delivered or dropped. */
export interface TraceEntry {
  /** Virtual time, ms. */
  readonly time: number;
  readonly kind: 'send' | 'nat' | 'deliver' | 'drop';
  /** Identifies one datagram across hops (a duplicate gets a new id). */
  readonly packet: number;
  /** Host or NAT name where this happened. */
  readonly node: string;
  /** For `'deliver'`: the attachment that claimed the datagram. */
  readonly machine?: string;
  /**
   * For `'send'`, `'nat'` and drops on a link (`'loss'`, `'mtu'`, `'no-route'`, `'ttl'`): the network the packet was
   * put on. `node` is then the host or NAT that put it there.
   */
  readonly network?: string;
  /** Source and destination as they are after this event (for `'nat'`: after translation). */
  readonly from: TransportAddress;
  readonly to: TransportAddress;
  /** Payload size in bytes. */
  readonly size: number;
  /** For `'drop'`. */
  readonly reason?: DropReason;
  /** For `'nat'`: which way the packet was translated. */
  readonly direction?: 'outbound' | 'inbound' | 'hairpin';
  /** For `'nat'`: source and destination before translation. */
  readonly before?: { readonly from: TransportAddress; readonly to: TransportAddress };
  /** The payload (a reference, not a copy). */
  readonly data: Uint8Array;
}

/** One trace entry as a line of text (for snapshots, logs and comparing runs). */
export function formatTraceEntry(e: TraceEntry): string {
  const base = `${e.time.toFixed(3).padStart(10)} ${e.kind.padEnd(7)} #${e.packet} ${e.node} ${formatAddress(e.from)} -> ${formatAddress(e.to)} ${e.size}B`;
  if (e.kind === 'drop') return `${base} (${e.reason}${e.network && e.reason === 'loss' ? ` on ${e.network}` : ''})`;
  if (e.kind === 'nat' && e.before) return `${base} [${e.direction} from ${formatAddress(e.before.from)} -> ${formatAddress(e.before.to)}]`;
  return base;
}

/** The whole trace as text, one entry per line. */
export function formatTrace(entries: readonly TraceEntry[]): string {
  return entries.map(formatTraceEntry).join('\n');
}
