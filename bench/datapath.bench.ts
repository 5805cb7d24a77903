/**
 * CPU per echoed 100-byte datagram on the selected pair of two connected `IceAgent`s (loopback, one process),
 * against a raw `node:dgram` echo between two plain sockets measured in the same run.
 *
 * Each round sends N datagrams from A, B echoes each one back on the same path, with at most WINDOW datagrams in
 * flight (so neither socket buffer overflows and the two modes see the same event-loop batching).
 * `process.cpuUsage()` (user + system, both ends, since both live in this process) is divided by N. Rounds alternate
 * raw / ICE and the medians are compared: the ratio is the result, absolute CPU depends on the machine.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { IceAgent } from '../src/node/ice-agent.js';
import { goalAtMost } from './goal.js';
import type { BenchResult } from './run.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'datapath';

const N = 20_000;
const WINDOW = 16;
const ROUNDS = 5;
const SIZE = 100;

/** Echo loop shared by both modes: `send(buf)` from A, `onEcho` called for each echo at A. */
async function echoRound(send: (b: Buffer) => void, setOnEcho: (f: () => void) => void): Promise<number> {
  const payload = Buffer.alloc(SIZE, 0x5a);
  payload[0] = 0x80; // looks like RTP (RFC 7983: 128..191), never like STUN
  let sent = 0;
  let echoed = 0;
  const done = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`datapath: only ${echoed}/${N} echoes`)), 30_000);
    setOnEcho(() => {
      echoed++;
      if (echoed === N) {
        clearTimeout(t);
        resolve();
      } else if (sent < N) {
        sent++;
        send(payload);
      }
    });
  });
  const cpu0 = process.cpuUsage();
  for (; sent < WINDOW; sent++) send(payload);
  await done;
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / N;
}

async function bind(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

async function rawRound(): Promise<number> {
  const a = await bind();
  const b = await bind();
  try {
    const bPort = b.address().port;
    b.on('message', (m, r) => b.send(m, r.port, r.address));
    return await echoRound(
      (buf) => a.send(buf, bPort, '127.0.0.1'),
      (f) => a.on('message', f),
    );
  } finally {
    await Promise.all([a, b].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

async function connectedPair(): Promise<[IceAgent, IceAgent]> {
  const opts = { includeLoopback: true, addressFilter: (x: string) => x === '127.0.0.1' } as const;
  const a = new IceAgent({ ...opts, role: 'controlling' });
  const b = new IceAgent({ ...opts, role: 'controlled' });
  await Promise.all([a.gather(), b.gather()]);
  const up = (x: IceAgent) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('datapath: no selected pair')), 10_000);
      x.once('selectedcandidatepairchange', () => {
        clearTimeout(t);
        resolve();
      });
    });
  const both = Promise.all([up(a), up(b)]);
  a.setRemoteParameters(b.getLocalParameters());
  b.setRemoteParameters(a.getLocalParameters());
  for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
  for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
  a.endOfRemoteCandidates();
  b.endOfRemoteCandidates();
  await both;
  return [a, b];
}

async function iceRound(a: IceAgent, b: IceAgent): Promise<number> {
  b.removeAllListeners('data');
  a.removeAllListeners('data');
  b.on('data', (d) => b.send(d));
  return echoRound(
    (buf) => {
      if (!a.send(buf)) throw new Error('datapath: send refused');
    },
    (f) => a.on('data', f),
  );
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchResult[]> {
  const [a, b] = await connectedPair();
  const raw: number[] = [];
  const ice: number[] = [];
  try {
    await rawRound(); // warm-up
    await iceRound(a, b);
    for (let i = 0; i < ROUNDS; i++) {
      raw.push(await rawRound());
      ice.push(await iceRound(a, b));
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  const r = median(raw);
  const x = median(ice);
  return [
    { name: 'raw node:dgram echo: CPU per echo', value: r * 1000, unit: 'ns', note: `median of ${ROUNDS} x ${N.toLocaleString('en-US')}, ${SIZE} B, window ${WINDOW}` },
    { name: 'IceAgent selected pair: CPU per echo', value: x * 1000, unit: 'ns', note: `rounds ${ice.map((v) => v.toFixed(1)).join('/')} µs` },
    { name: 'IceAgent / raw', value: x / r, unit: 'x', note: goalAtMost(x / r, 1.2) },
  ];
}
