/**
 * A test-owned UDP relay on loopback that forwards one client's datagrams to `target` and back, with a delay each
 * way (fixed, or drawn per datagram from a range) and optional loss. Shared by the TURN release test and the chaos
 * suite. Every timer it starts is cleared by `close()`.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { randomInt } from 'node:crypto';

export interface RelayOptions {
  /** One-way delay in ms, or a [min, max] range drawn per datagram (default 0). */
  readonly delayMs?: number | readonly [number, number];
  /** Probability (0..1) each datagram is dropped, each way (default 0). */
  readonly loss?: number;
  /** Sees each client datagram before it is delayed (or dropped). */
  readonly onForward?: (data: Uint8Array) => void;
}

export interface UdpRelay {
  /** The port clients send to (on 127.0.0.1). */
  readonly port: number;
  /** Datagrams forwarded and dropped so far, both ways. */
  readonly counts: { forwarded: number; dropped: number };
  close(): Promise<void>;
}

/** Starts a relay in front of `target` (a loopback address). */
export async function udpRelay(target: { address: string; port: number }, options: RelayOptions = {}): Promise<UdpRelay> {
  const front: Socket = createSocket('udp4');
  const back: Socket = createSocket('udp4');
  let client: RemoteInfo | undefined;
  const timers = new Set<NodeJS.Timeout>();
  const counts = { forwarded: 0, dropped: 0 };
  const delay = options.delayMs ?? 0;
  const loss = options.loss ?? 0;
  const later = (f: () => void): void => {
    if (loss > 0 && randomInt(1_000_000) < loss * 1_000_000) {
      counts.dropped++;
      return;
    }
    counts.forwarded++;
    const ms = typeof delay === 'number' ? delay : delay[0] + randomInt(delay[1] - delay[0] + 1);
    const t = setTimeout(() => {
      timers.delete(t);
      f();
    }, ms);
    timers.add(t);
  };
  front.on('message', (m, r) => {
    client = r;
    options.onForward?.(m);
    later(() => back.send(m, target.port, target.address));
  });
  back.on('message', (m) => later(() => client && front.send(m, client.port, client.address)));
  await Promise.all([front, back].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
  return {
    port: front.address().port,
    counts,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([front, back].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
