/**
 * A small TCP world for AgentCore unit tests in virtual time: listeners on passive/so bases, `tcp-connect` served
 * with an ephemeral port after one delay (or refused when nothing listens), bytes delivered in order after one delay,
 * optionally cut into chunks of `chunk` bytes (framing across reads), and resets.
 */
import type { LocalCandidate, TcpType } from '../../src/candidates/candidate.js';
import { AgentCore } from '../../src/checklist/agent-core.js';
import type { AgentCoreOptions, AgentEvent } from '../../src/checklist/types.js';
import type { Datagram, TransportAddress } from '../../src/types.js';
import { formatAddress } from '../../src/types.js';
import { candidatePriority, seededRandom } from './harness.js';

export function tcpHost(address: string, port: number, tcpType: TcpType, component = 1): LocalCandidate {
  const p = tcpType === 'active' ? 9 : port;
  const base = { address, port: p };
  const dir = tcpType === 'active' ? 6 : tcpType === 'passive' ? 4 : 2;
  return {
    foundation: `t${address.replace(/[^0-9a-f]/gi, '')}`,
    component,
    transport: 'tcp',
    priority: candidatePriority('host', dir * 8192 + 8191, component) - 2 ** 24,
    address,
    port: p,
    type: 'host',
    tcpType,
    base,
    socket: base,
  };
}

interface End {
  readonly agent: string;
  readonly id: string;
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  peer: End | undefined;
  open: boolean;
}

const k = (a: TransportAddress) => formatAddress(a);

export class TcpWorld {
  now = 0;
  readonly agents = new Map<string, AgentCore>();
  readonly events = new Map<string, AgentEvent[]>();
  /** Listening addresses -> agent. */
  readonly listeners = new Map<string, string>();
  readonly ends = new Map<string, End>(); // agent|id
  /** Bytes of every frame sent, per agent (for assertions). */
  readonly wire: { t: number; from: string; data: Uint8Array; local: TransportAddress; remote: TransportAddress }[] = [];
  #queue: { at: number; seq: number; run: () => void }[] = [];
  #seq = 0;
  #port = 40000;
  readonly delayMs: number;
  chunk: number | undefined;
  /** Addresses whose connects are never answered (a black hole: SYNs dropped). */
  readonly blackholes = new Set<string>();

  constructor(delayMs = 10, chunk?: number) {
    this.delayMs = delayMs;
    this.chunk = chunk;
  }

  add(name: string, options: Partial<AgentCoreOptions>, listen: readonly TransportAddress[] = []): AgentCore {
    const core = new AgentCore({ random: seededRandom(name.length * 7919 + name.charCodeAt(0)), ...options });
    this.agents.set(name, core);
    this.events.set(name, []);
    for (const l of listen) this.listeners.set(k(l), name);
    return core;
  }

  at(delay: number, run: () => void): void {
    this.#queue.push({ at: this.now + delay, seq: this.#seq++, run });
  }

  drain(): void {
    for (const [name, core] of this.agents) {
      for (let d = core.pollTransmit(); d; d = core.pollTransmit()) this.#send(name, d);
      const ev = this.events.get(name)!;
      for (let e = core.pollEvent(); e; e = core.pollEvent()) {
        ev.push(e);
        if (e.type === 'tcp-connect') this.#connect(name, e.id, e.local, e.remote);
        if (e.type === 'tcp-close') this.#close(name, e.id, false);
      }
    }
  }

  /** Resets connection `id` of `agent` (both sides see it closed). */
  reset(agent: string, id: string): void {
    this.#close(agent, id, true);
  }

  #connect(agent: string, id: string, local: TransportAddress, remote: TransportAddress): void {
    const target = this.listeners.get(k(remote));
    if (this.blackholes.has(k(remote))) return;
    if (target === undefined) {
      this.at(this.delayMs * 2, () => this.agents.get(agent)!.tcpConnectFailed(this.now, id));
      return;
    }
    const myLocal = { address: local.address, port: local.port === 0 ? this.#port++ : local.port };
    this.at(this.delayMs, () => {
      const peerId = this.agents.get(target)!.tcpAccepted(this.now, remote, myLocal);
      if (peerId === undefined) {
        this.at(this.delayMs, () => this.agents.get(agent)!.tcpConnectFailed(this.now, id));
        return;
      }
      const a: End = { agent, id, local: myLocal, remote, peer: undefined, open: true };
      const b: End = { agent: target, id: peerId, local: remote, remote: myLocal, peer: a, open: true };
      a.peer = b;
      this.ends.set(`${agent}|${id}`, a);
      this.ends.set(`${target}|${peerId}`, b);
      this.at(this.delayMs, () => {
        if (a.open && !this.agents.get(agent)!.tcpConnected(this.now, id, myLocal)) this.#close(agent, id, true);
      });
    });
  }

  #close(agent: string, id: string, notifySelf: boolean): void {
    const e = this.ends.get(`${agent}|${id}`);
    if (e === undefined || !e.open) return;
    e.open = false;
    if (notifySelf) this.agents.get(agent)!.tcpClosed(this.now, id);
    const p = e.peer;
    if (p && p.open) {
      p.open = false;
      this.at(this.delayMs, () => this.agents.get(p.agent)!.tcpClosed(this.now, p.id));
    }
  }

  #send(from: string, d: Datagram): void {
    if (d.transport !== 'tcp') throw new Error('TcpWorld carries TCP only');
    this.wire.push({ t: this.now, from, data: d.data, local: d.local, remote: d.remote });
    let end: End | undefined;
    for (const e of this.ends.values()) if (e.agent === from && e.open && k(e.local) === k(d.local) && k(e.remote) === k(d.remote)) end = e;
    const peer = end?.peer;
    if (!peer || !peer.open) return;
    const pieces: Uint8Array[] = [];
    const step = this.chunk ?? d.data.length;
    for (let i = 0; i < d.data.length; i += step) pieces.push(d.data.subarray(i, i + step));
    this.at(this.delayMs, () => {
      for (const piece of pieces) {
        if (!peer.open) return;
        this.agents.get(peer.agent)!.handleReceive(this.now, { local: peer.local, remote: peer.remote, data: piece, transport: 'tcp' });
      }
    });
  }

  /** Injects raw bytes on `agent`'s end of connection `id` (as if its peer had sent them). */
  inject(agent: string, id: string, data: Uint8Array): void {
    const e = this.ends.get(`${agent}|${id}`)!;
    this.agents.get(agent)!.handleReceive(this.now, { local: e.local, remote: e.remote, data, transport: 'tcp' });
  }

  next(): number | undefined {
    let t = Infinity;
    for (const p of this.#queue) t = Math.min(t, p.at);
    for (const core of this.agents.values()) {
      const x = core.pollTimeout();
      if (x !== undefined) t = Math.min(t, x);
    }
    return t === Infinity ? undefined : t;
  }

  run(until: number, stop?: () => boolean, maxSteps = 100_000): void {
    this.drain();
    for (let step = 0; step < maxSteps; step++) {
      if (stop?.()) return;
      const t = this.next();
      if (t === undefined || t > until) {
        this.now = Math.max(this.now, until);
        return;
      }
      this.now = Math.max(this.now, t);
      const due = this.#queue.filter((p) => p.at <= this.now).sort((a, b) => a.at - b.at || a.seq - b.seq);
      this.#queue = this.#queue.filter((p) => p.at > this.now);
      for (const p of due) {
        p.run();
        this.drain();
      }
      for (const core of this.agents.values()) {
        const x = core.pollTimeout();
        if (x !== undefined && x <= this.now) core.handleTimeout(this.now);
      }
      this.drain();
    }
    throw new Error('TcpWorld: step limit');
  }
}
