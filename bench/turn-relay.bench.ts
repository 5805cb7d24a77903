/**
 * TURN relayed data path through a real coturn on 127.0.0.1: datagrams per second delivered to a plain UDP peer when
 * the client sends ChannelData, when it sends Send indications, and, as the floor measured in the same run, when a
 * plain UDP socket sends straight to the peer. Each mode runs in alternating rounds of paced bursts (burst, then
 * yield to the event loop) and the medians are compared, so background load on the shared machine hits all alike.
 * Reported: delivered datagram rates, delivery ratio (loss), and the ratios relay/plain and ChannelData/Send.
 *
 * Needs `turnserver`; without it the bench prints "skipped: coturn not installed" and returns no results.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { openTurnAllocation, type TurnAllocation } from '../src/node/turn-transport.js';
import type { TransportAddress } from '../src/types.js';
import { coturnVersion, startCoturn } from '../test/helpers/coturn.js';
import type { BenchResult } from './run.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'turn-relay';

const ROUNDS = 5;
const ROUND_MS = 400;
const BURST = 32;
const PAYLOAD = 160; // a 20 ms G.711 frame plus RTP header, roughly

interface Sender {
  send(data: Uint8Array): void;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Sends paced bursts for `ms`; returns sent and delivered counts (delivery waited for 100 ms after the end). */
async function measure(sender: Sender, counter: { n: number }, ms: number): Promise<{ sent: number; delivered: number; seconds: number }> {
  const data = new Uint8Array(PAYLOAD).fill(0x55);
  counter.n = 0;
  let sent = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < BURST; i++) sender.send(data);
    sent += BURST;
    await tick();
  }
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 100));
  return { sent, delivered: counter.n, seconds };
}

async function bindUdp(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
  s.setRecvBufferSize(4 * 1024 * 1024);
  return s;
}

/** Runs the bench; returns [] (after printing why) when coturn is not installed. */
export async function run(): Promise<BenchResult[]> {
  const version = coturnVersion();
  if (version === undefined) {
    console.log('  skipped: coturn not installed (apt-get install -y coturn)');
    return [];
  }
  const server = await startCoturn({ tls: false });
  const peer = await bindUdp();
  const plain = await bindUdp();
  const counter = { n: 0 };
  peer.on('message', () => counter.n++);
  const peerAddr: TransportAddress = { address: '127.0.0.1', port: peer.address().port };
  const allocations: TurnAllocation[] = [];
  try {
    const base = { server: { address: '127.0.0.1', port: server.port }, username: server.user, password: server.password, localAddress: '127.0.0.1' };
    const chan = await openTurnAllocation({ ...base, autoBindChannel: false });
    const ind = await openTurnAllocation({ ...base, autoBindChannel: false });
    allocations.push(chan, ind);
    await chan.createPermission(peerAddr.address);
    await chan.bindChannel(peerAddr);
    await ind.createPermission(peerAddr.address);

    const modes: Record<'plain' | 'channel' | 'send', Sender> = {
      plain: { send: (d) => plain.send(d, peerAddr.port, peerAddr.address) },
      channel: { send: (d) => chan.send(peerAddr, d) },
      send: { send: (d) => ind.send(peerAddr, d) },
    };
    const rates: Record<keyof typeof modes, number[]> = { plain: [], channel: [], send: [] };
    const delivery: Record<keyof typeof modes, number[]> = { plain: [], channel: [], send: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of ['plain', 'channel', 'send'] as const) {
        const r = await measure(modes[mode], counter, ROUND_MS);
        rates[mode].push(r.delivered / r.seconds);
        delivery[mode].push(r.delivered / r.sent);
      }
    }
    if (chan.client.stats.sendIndications !== 0 || ind.client.stats.channelDataSent !== 0) {
      throw new Error('bench modes mixed ChannelData and Send indications');
    }
    const p = median(rates.plain);
    const c = median(rates.channel);
    const s = median(rates.send);
    const pct = (xs: number[]) => `${(median(xs) * 100).toFixed(1)} % delivered`;
    return [
      { name: 'plain UDP to peer (floor)', value: p, unit: 'dgram/s', note: pct(delivery.plain) },
      { name: 'relayed, ChannelData', value: c, unit: 'dgram/s', note: pct(delivery.channel) },
      { name: 'relayed, Send indications', value: s, unit: 'dgram/s', note: pct(delivery.send) },
      { name: 'ChannelData / plain', value: c / p, unit: 'x', note: 'delivered-rate ratio' },
      { name: 'Send indications / plain', value: s / p, unit: 'x', note: 'delivered-rate ratio' },
      { name: 'ChannelData / Send indications', value: c / s, unit: 'x', note: `${PAYLOAD}-byte payloads, ${version}` },
    ];
  } finally {
    await Promise.allSettled(allocations.map((a) => a.close()));
    peer.close();
    plain.close();
    await server.stop();
  }
}
