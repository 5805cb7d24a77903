/**
 * ICE-TCP (RFC 6544) on loopback: time to a selected pair for two `IceAgent`s with TCP candidates only (UDP measured
 * the same way beside it), and CPU per echoed 100-byte datagram on the selected TCP pair against a raw `node:net`
 * echo with the same RFC 4571 2-byte framing (the floor: two sockets, frame on write, deframe on read), alternating
 * rounds, medians compared. As in `datapath.bench.ts`, the ratio is the result; absolute CPU depends on the machine.
 * @module
 */
import { createServer, connect, type Socket } from 'node:net';
import { IceAgent, type IceAgentOptions } from '../src/node/ice-agent.js';
import { frameRfc4571, Rfc4571Framer } from '../src/stun/rfc4571.js';
import { goalAtMost } from './goal.js';
import type { BenchResult } from './run.js';

/** Bench name used by `npm run bench -- <name>`. */
export const name = 'tcp';

const CONNECTS = 9;
const N = 20_000;
const WINDOW = 16;
const ROUNDS = 5;
const SIZE = 100;

const loopback = { includeLoopback: true, addressFilter: (x: string) => x === '127.0.0.1' } as const;
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** Gathers two agents, then times signalling to both having a selected pair (ms). */
async function timeToSelected(options: IceAgentOptions): Promise<{ ms: number; a: IceAgent; b: IceAgent }> {
  const a = new IceAgent({ ...loopback, ...options, role: 'controlling' });
  const b = new IceAgent({ ...loopback, ...options, role: 'controlled' });
  await Promise.all([a.gather(), b.gather()]);
  const up = (x: IceAgent) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('tcp bench: no selected pair')), 10_000);
      x.once('selectedcandidatepairchange', () => {
        clearTimeout(t);
        resolve();
      });
    });
  const both = Promise.all([up(a), up(b)]);
  const t0 = performance.now();
  a.setRemoteParameters(b.getLocalParameters());
  b.setRemoteParameters(a.getLocalParameters());
  for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
  for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
  a.endOfRemoteCandidates();
  b.endOfRemoteCandidates();
  await both;
  return { ms: performance.now() - t0, a, b };
}

async function connectTimes(options: IceAgentOptions): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    const { ms, a, b } = await timeToSelected(options);
    out.push(ms);
    await Promise.all([a.close(), b.close()]);
  }
  return out;
}

async function echoRound(send: (b: Buffer) => void, setOnEcho: (f: () => void) => void): Promise<number> {
  const payload = Buffer.alloc(SIZE, 0x5a);
  payload[0] = 0x80;
  let sent = 0;
  let echoed = 0;
  const done = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`tcp bench: only ${echoed}/${N} echoes`)), 30_000);
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

/**
 * Two plain TCP sockets echoing RFC 4571 frames: frame on write, deframe on read, nothing else. `views`: frames are
 * views of the socket's chunk instead of copies (what icewire's direct route does since), a stricter floor.
 */
async function rawRound(views = false): Promise<number> {
  const server = createServer({ noDelay: true }, (s) => {
    const f = new Rfc4571Framer(undefined, views);
    s.on('data', (chunk: Buffer) => {
      for (const frame of f.push(chunk)) s.write(frameRfc4571(frame));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const a: Socket = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((r) => a.once('connect', () => r()));
  try {
    const f = new Rfc4571Framer(undefined, views);
    return await echoRound(
      (buf) => a.write(frameRfc4571(buf)),
      (onEcho) =>
        a.on('data', (chunk: Buffer) => {
          for (const _frame of f.push(chunk)) onEcho();
        }),
    );
  } finally {
    a.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

async function iceRound(a: IceAgent, b: IceAgent): Promise<number> {
  b.removeAllListeners('data');
  a.removeAllListeners('data');
  b.on('data', (d) => b.send(d));
  return echoRound(
    (buf) => {
      if (!a.send(buf)) throw new Error('tcp bench: send refused');
    },
    (f) => a.on('data', f),
  );
}

export async function run(): Promise<BenchResult[]> {
  const tcpTimes = await connectTimes({ transports: ['tcp'] });
  const udpTimes = await connectTimes({});
  const { a, b } = await timeToSelected({ transports: ['tcp'] });
  const raw: number[] = [];
  const rawViews: number[] = [];
  const ice: number[] = [];
  try {
    if (a.getSelectedCandidatePair()?.local.transport !== 'tcp') throw new Error('tcp bench: the selected pair is not TCP');
    await rawRound();
    await iceRound(a, b);
    for (let i = 0; i < ROUNDS; i++) {
      raw.push(await rawRound());
      rawViews.push(await rawRound(true));
      ice.push(await iceRound(a, b));
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  const r = median(raw);
  const rv = median(rawViews);
  const x = median(ice);
  return [
    { name: 'TCP only: signalling to selected pair', value: median(tcpTimes), unit: 'ms', note: `median of ${CONNECTS}: ${tcpTimes.map((t) => t.toFixed(1)).join('/')}` },
    { name: 'UDP only: signalling to selected pair', value: median(udpTimes), unit: 'ms', note: `median of ${CONNECTS}, same machine, for comparison` },
    { name: 'raw node:net + RFC 4571 echo: CPU per echo', value: r * 1000, unit: 'ns', note: `median of ${ROUNDS} x ${N.toLocaleString('en-US')}, ${SIZE} B, window ${WINDOW}` },
    { name: 'IceAgent TCP pair: CPU per echo', value: x * 1000, unit: 'ns', note: `rounds ${ice.map((v) => v.toFixed(1)).join('/')} µs` },
    { name: 'IceAgent TCP / raw TCP', value: x / r, unit: 'x', note: goalAtMost(x / r, 1.5) },
    { name: 'raw echo, frames not copied: CPU per echo', value: rv * 1000, unit: 'ns', note: 'the stricter floor' },
    { name: 'IceAgent TCP / raw TCP, frames not copied', value: x / rv, unit: 'x', note: 'compare the in-process UDP data path (datapath bench)' },
  ];
}
