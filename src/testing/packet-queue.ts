/**
 * The virtual network's packets in flight: a packet on its way to a node, and the queue they wait in, a binary
 * min-heap on (arrival time, sequence number) so that packets due at the same instant leave in the order they were
 * scheduled (what keeps runs deterministic).
 * @module
 */
import type { TransportAddress } from '../types.js';
import type { NodeRef } from './network.js';

/** A datagram inside the network: `src`/`dst` change at NATs, `id` stays (traces follow it across hops). */
export interface Packet {
  readonly id: number;
  readonly src: TransportAddress;
  readonly dst: TransportAddress;
  readonly data: Uint8Array;
  readonly hops: number;
  /** A TCP segment (see `tcp.ts`): delivered in order, never lost; absent for UDP. */
  readonly tcp?: TcpSegment;
}

/** What a TCP packet of the virtual network says: open (`syn`), accept (`syn-ack`), bytes (`data`), reset (`rst`). */
export type TcpSegment = 'syn' | 'syn-ack' | 'data' | 'rst';

/** A packet due at `target` at `time`; `seq` breaks ties in scheduling order. */
export interface QueuedPacket {
  readonly time: number;
  readonly seq: number;
  readonly packet: Packet;
  readonly target: NodeRef;
}

function before(a: QueuedPacket, b: QueuedPacket): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/** Adds `item` to the heap `h`. */
export function heapPush(h: QueuedPacket[], item: QueuedPacket): void {
  h.push(item);
  let i = h.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(h[i]!, h[parent]!)) break;
    [h[i], h[parent]] = [h[parent]!, h[i]!];
    i = parent;
  }
}

/** Removes and returns the earliest packet of the heap `h`. */
export function heapPop(h: QueuedPacket[]): QueuedPacket | undefined {
  const top = h[0];
  const last = h.pop();
  if (h.length > 0 && last) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
  return top;
}
