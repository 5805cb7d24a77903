/**
 * The process-wide 5 ms rule (RFC 8445 §14.2) measured where it applies: on the wire. Many `IceAgent`s in this
 * process, on real loopback sockets and the real event loop, share one `GlobalPacer`. Each gathers from a loopback
 * STUN server and checks remote candidates that never answer (sockets that swallow everything), so every agent
 * starts several new transactions and retransmits them. One pair of agents is connected first and keeps consent
 * (RFC 7675) running through the window.
 *
 * Every datagram any socket of the process sends is time-stamped around the `node:dgram` `send()` call (the
 * endpoint's lookup answers IP literals synchronously, so the `sendmsg` happens inside that call). STUN requests are
 * classified from their bytes: the first send of a transaction ID is a new transaction, a repeat is a
 * retransmission (RTO-driven, not paced), and requests of the connected pair after it completed are consent checks
 * (not paced, §14.1). The gap between two consecutive new transactions is counted conservatively, from the end of
 * the first `send()` to the start of the next.
 *
 * Reported as counts and ratios (gaps under 5 ms, smallest gap), never gated on absolute time.
 * @module
 */
import { Socket, createSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { IceAgent } from '../src/node/ice-agent.js';
import { startStunServer } from '../src/node/stun-server.js';
import { GlobalPacer } from '../src/stun/pacing.js';
import type { Candidate } from '../src/candidates/candidate.js';
import type { BenchResult } from './run.js';

export const name = 'pacing-wire';

/** Host candidates on 127.0.0.1 only (the network rule: loopback). */
const LOOPBACK = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;

/** Options of {@link captureWire}. */
export interface WireCaptureOptions {
  /** Agents checking unanswered remote candidates. */
  readonly agents: number;
  /** Unanswered remote candidates per agent (one check transaction each). */
  readonly remotes: number;
  /** Upper bound on the capture window, ms (it ends earlier once every expected transaction and consent was seen). */
  readonly maxWindowMs: number;
  /** Add a connected pair whose consent checks run during the window (first ones come 4-6 s after connecting). */
  readonly consentPair: boolean;
}

/** One `send()` seen on a socket of the process. */
interface Send {
  readonly start: number;
  readonly end: number;
  /** Local port of the sending socket. */
  readonly port: number;
  /** Destination port (-1 when the call did not name one). */
  readonly to: number;
  readonly head: Uint8Array;
}

/** What {@link captureWire} measured. */
export interface WireCapture {
  /** New gathering and check transactions (first sends of a request), in send order. */
  readonly newTransactions: number;
  /** Of those, Binding requests to the STUN server (gathering). */
  readonly gathering: number;
  /** Repeated sends of a transaction (RTO). */
  readonly retransmissions: number;
  /** Requests of the connected pair after it completed (RFC 7675). */
  readonly consent: number;
  /** End of one new transaction's `send()` to the start of the next, ms. */
  readonly gaps: readonly number[];
  /** The first of those gaps (the process's first two transactions). */
  readonly firstGap: number;
  /** Times the edge reported a paced send to the pacer (`GlobalPacer.noteSent`). */
  readonly pacedSends: number;
  /** Agents in the process (population plus the pair). */
  readonly agentCount: number;
  readonly windowMs: number;
}

const MAGIC = [0x21, 0x12, 0xa4, 0x42];

/** STUN request (class bits 0) with the magic cookie: its method, else undefined. */
function requestMethod(h: Uint8Array): number | undefined {
  if (h.length < 20 || h[0]! > 3 || MAGIC.some((b, i) => h[4 + i] !== b)) return undefined;
  const type = (h[0]! << 8) | h[1]!;
  if ((type & 0x0110) !== 0) return undefined;
  return type & 0x3eef;
}

const txKey = (h: Uint8Array) => Buffer.from(h.subarray(8, 20)).toString('hex');

/** A pacer that counts the edge's send reports. */
class CountingPacer extends GlobalPacer {
  sent = 0;
  override noteSent(at: number): void {
    this.sent++;
    super.noteSent(at);
  }
}

/** Records every `dgram` `send()` of the process until the returned function is called (which restores `send`). */
function tapSends(into: Send[]): () => void {
  const proto = Socket.prototype as unknown as { send: (...args: unknown[]) => unknown };
  const original = proto.send;
  const ports = new WeakMap<object, number>();
  proto.send = function (this: Socket, ...args: unknown[]) {
    let port = ports.get(this);
    if (port === undefined) ports.set(this, (port = this.address().port));
    const data = args[0];
    const head = data instanceof Uint8Array ? data.slice(0, 20) : new Uint8Array(0);
    const start = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      into.push({ start, end: performance.now(), port, to: typeof args[1] === 'number' ? args[1] : -1, head });
    }
  };
  return () => {
    proto.send = original;
  };
}

/** Sockets that receive and never answer: the unreachable-but-loopback remote candidates. */
async function sinks(n: number): Promise<{ ports: number[]; close: () => Promise<void> }> {
  const sockets = await Promise.all(
    Array.from({ length: n }, () => {
      const s = createSocket('udp4');
      return new Promise<Socket>((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
    }),
  );
  return {
    ports: sockets.map((s) => s.address().port),
    close: () => Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  };
}

function sinkCandidate(port: number, i: number): Candidate {
  return { foundation: `sink${i}`, component: 1, transport: 'udp', priority: 2_130_706_431 - i, address: '127.0.0.1', port, type: 'host' };
}

function completed(a: IceAgent, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pair not completed within ${ms} ms (${a.state})`)), ms);
    const on = (s: string) => {
      if (s !== 'completed') return;
      clearTimeout(t);
      a.off('statechange', on);
      resolve();
    };
    if (a.state === 'completed') on('completed');
    else a.on('statechange', on);
  });
}

/**
 * Runs the population on loopback, captures every datagram sent, and classifies it (see the module comment). Every
 * socket and agent is closed before it returns, also on failure.
 */
export async function captureWire(o: WireCaptureOptions): Promise<WireCapture> {
  const sends: Send[] = [];
  const pacer = new CountingPacer();
  const agents: IceAgent[] = [];
  const stun = await startStunServer();
  const sink = await sinks(o.remotes);
  const untap = tapSends(sends);
  const t0 = performance.now();
  let pairDoneAt = Infinity;
  const pairPorts = new Set<number>();
  try {
    const make = () => {
      const a = new IceAgent({ ...LOOPBACK, pacer, iceServers: [{ urls: `stun:127.0.0.1:${stun.port}` }] });
      agents.push(a);
      return a;
    };
    if (o.consentPair) {
      const [x, y] = [make(), make()];
      await Promise.all([x.gather(), y.gather()]);
      for (const c of [...x.getLocalCandidates(), ...y.getLocalCandidates()]) pairPorts.add(c.port);
      for (const [from, to] of [[x, y], [y, x]] as const) {
        to.setRemoteParameters(from.getLocalParameters());
        for (const c of from.getLocalCandidates()) to.addRemoteCandidate(c);
        to.endOfRemoteCandidates();
      }
      await Promise.all([completed(x, 3000), completed(y, 3000)]);
      pairDoneAt = performance.now();
    }
    const population = Array.from({ length: o.agents }, make);
    const gathered = population.map((a) => a.gather());
    for (const a of population) {
      a.setRemoteParameters({ ufrag: 'sink', pwd: 'neveranswersneveranswers' });
      sink.ports.forEach((port, i) => a.addRemoteCandidate(sinkCandidate(port, i)));
      a.endOfRemoteCandidates();
    }
    await Promise.all(gathered);
    // Every population agent starts 1 gathering + `remotes` check transactions; the pair's consent needs 4-6 s.
    const expected = o.agents * (1 + o.remotes);
    const deadline = t0 + o.maxWindowMs;
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      const now = performance.now();
      if (now >= deadline) break;
      const c = classify(sends, pairPorts, pairDoneAt, stun.port);
      if (c.newTx.length - c.pairTransactions >= expected && (!o.consentPair || c.consentPorts.size >= 2)) break;
    }
  } finally {
    untap();
    await Promise.all(agents.map((a) => a.close()));
    await Promise.all([stun.close(), sink.close()]);
  }
  const c = classify(sends, pairPorts, pairDoneAt, stun.port);
  const gaps: number[] = [];
  for (let k = 1; k < c.newTx.length; k++) gaps.push(c.newTx[k]!.start - c.newTx[k - 1]!.end);
  return {
    newTransactions: c.newTx.length,
    gathering: c.gathering,
    retransmissions: c.retransmissions,
    consent: c.consent,
    gaps,
    firstGap: gaps[0] ?? NaN,
    pacedSends: pacer.sent,
    agentCount: agents.length,
    windowMs: performance.now() - t0,
  };
}

function classify(sends: readonly Send[], pairPorts: ReadonlySet<number>, pairDoneAt: number, stunPort: number) {
  const seen = new Set<string>();
  const newTx: Send[] = [];
  const consentPorts = new Set<number>();
  let retransmissions = 0;
  let consent = 0;
  let gathering = 0;
  let pairTransactions = 0;
  for (const s of sends) {
    if (requestMethod(s.head) === undefined) continue; // responses, indications (keepalives), data
    const key = txKey(s.head);
    if (seen.has(key)) {
      retransmissions++;
      continue;
    }
    seen.add(key);
    if (pairPorts.has(s.port) && s.start > pairDoneAt) {
      consent++;
      consentPorts.add(s.port);
      continue;
    }
    if (pairPorts.has(s.port)) pairTransactions++;
    if (s.to === stunPort) gathering++;
    newTx.push(s);
  }
  newTx.sort((a, b) => a.start - b.start);
  return { newTx, retransmissions, consent, consentPorts, gathering, pairTransactions };
}

export async function run(): Promise<BenchResult[]> {
  const r = await captureWire({ agents: 200, remotes: 2, maxWindowMs: 8000, consentPair: true });
  const under = r.gaps.filter((g) => g < 5).length;
  const min = r.gaps.length ? Math.min(...r.gaps) : NaN;
  return [
    { name: '200 agents: new transactions on the wire', value: r.newTransactions, unit: '', note: `${r.gathering} gathering, ${r.retransmissions} retransmissions and ${r.consent} consent checks not counted; ${r.agentCount} agents, ${Math.round(r.windowMs)} ms window` },
    { name: '200 agents: gaps < 5 ms between new transactions', value: under, unit: '', note: `of ${r.gaps.length} (${((100 * under) / Math.max(1, r.gaps.length)).toFixed(2)} %; goal 0: ${under === 0 ? 'met' : 'NOT met'})` },
    { name: '200 agents: smallest gap x 1000', value: min * 1000, unit: 'us', note: `end of one send() to the start of the next; first two transactions ${r.firstGap.toFixed(2)} ms apart` },
    { name: '200 agents: paced sends reported / new transactions', value: r.pacedSends / Math.max(1, r.newTransactions), unit: 'x', note: `goal 1.00 (every first send, nothing else): ${r.pacedSends === r.newTransactions ? 'met' : 'NOT met'}` },
  ];
}
