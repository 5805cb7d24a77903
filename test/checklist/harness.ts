/**
 * Test harness for the agent core: a seeded RandomSource, candidate builders and a tiny discrete-event driver that
 * wires AgentCores back to back (fixed delay, optional loss, unreachable addresses, a NAT-like source rewrite).
 */
import type { Candidate, CandidateType, LocalCandidate } from '../../src/candidates/candidate.js';
import { AgentCore } from '../../src/checklist/agent-core.js';
import type { AgentCoreOptions, AgentEvent } from '../../src/checklist/types.js';
import { looksLikeStun, tryDecodeStunMessage } from '../../src/stun/message.js';
import type { Datagram, RandomSource, TransportAddress } from '../../src/types.js';
import { formatAddress } from '../../src/types.js';
import { SeededRandom } from '../../src/testing/random.js';

/** Deterministic RandomSource (mulberry32). */
export function seededRandom(seed: number): RandomSource {
  return new SeededRandom(seed);
}

const TYPE_PREF: Record<CandidateType, number> = { host: 126, prflx: 110, srflx: 100, relay: 0 };

/** RFC 8445 §5.1.2.1 priority. */
export function candidatePriority(type: CandidateType, localPref: number, component: number): number {
  return TYPE_PREF[type] * 2 ** 24 + localPref * 2 ** 8 + (256 - component);
}

/** A host candidate on `address:port`. */
export function host(address: string, port: number, component = 1, localPref = 65535, foundation?: string): LocalCandidate {
  const base = { address, port };
  return {
    foundation: foundation ?? `h${address.replace(/[^0-9a-f]/gi, '')}`,
    component,
    transport: 'udp',
    priority: candidatePriority('host', localPref, component),
    address,
    port,
    type: 'host',
    base,
    socket: base,
  };
}

/** A server-reflexive candidate `address:port` with base `base`. */
export function srflx(address: string, port: number, base: TransportAddress, component = 1): LocalCandidate {
  return {
    foundation: `s${base.address.replace(/[^0-9a-f]/gi, '')}`,
    component,
    transport: 'udp',
    priority: candidatePriority('srflx', 65535, component),
    address,
    port,
    type: 'srflx',
    relatedAddress: base.address,
    relatedPort: base.port,
    base,
    socket: base,
  };
}

/** Strips a local candidate to what is signalled. */
export function signalled(c: LocalCandidate): Candidate {
  const { base: _b, socket: _s, relayServer: _r, mdnsName: _m, ...rest } = c;
  return rest;
}

/** A transmit as seen by the driver. */
export interface SentRecord {
  readonly t: number;
  readonly agent: string;
  readonly datagram: Datagram;
  /** STUN class and method summary, or 'data'. */
  readonly kind: 'request' | 'success' | 'error' | 'indication' | 'data';
  readonly useCandidate: boolean;
}

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly to: string;
  readonly datagram: Datagram;
}

/** Options of `Driver`. */
export interface DriverOptions {
  /** One-way delay, ms (default 10). */
  readonly delayMs?: number;
  /** Return true to drop a datagram (called for every datagram in order). */
  readonly drop?: (d: Datagram, from: string, index: number) => boolean;
}

const key = (a: TransportAddress): string => formatAddress(a);

/** Wires agents together over a lossless (unless told) network with a fixed delay. */
export class Driver {
  now = 0;
  readonly agents = new Map<string, AgentCore>();
  readonly events = new Map<string, AgentEvent[]>();
  readonly sent: SentRecord[] = [];
  /** Datagrams actually delivered: receiving agent, time, datagram. */
  readonly delivered: { readonly t: number; readonly to: string; readonly datagram: Datagram }[] = [];
  #owner = new Map<string, string>();
  /** NAT: agent -> (base -> mapped). */
  #natOut = new Map<string, TransportAddress>();
  #natIn = new Map<string, TransportAddress>();
  #queue: Pending[] = [];
  #seq = 0;
  #index = 0;
  readonly delayMs: number;
  drop: ((d: Datagram, from: string, index: number) => boolean) | undefined;
  /** Agents whose outgoing traffic is silently discarded (a peer that stopped answering). */
  readonly muted = new Set<string>();

  constructor(options: DriverOptions = {}) {
    this.delayMs = options.delayMs ?? 10;
    this.drop = options.drop;
  }

  /** Adds an agent owning the given base addresses. */
  add(name: string, options: Partial<AgentCoreOptions> & { random?: RandomSource }, bases: readonly TransportAddress[] = []): AgentCore {
    const core = new AgentCore({ random: seededRandom(name.length * 7919 + name.charCodeAt(0)), ...options });
    this.agents.set(name, core);
    this.events.set(name, []);
    for (const b of bases) this.own(name, b);
    return core;
  }

  /** Declares that `name` receives datagrams sent to `addr`. */
  own(name: string, addr: TransportAddress): void {
    this.#owner.set(key(addr), name);
  }

  /** Makes `addr` unreachable (nobody receives what is sent to it). */
  disown(addr: TransportAddress): void {
    this.#owner.delete(key(addr));
  }

  /** Rewrites the source `base` of `name`'s datagrams to `mapped` (and routes `mapped` back to `base`). */
  nat(name: string, base: TransportAddress, mapped: TransportAddress): void {
    this.#natOut.set(key(base), mapped);
    this.#natIn.set(key(mapped), base);
    this.#owner.set(key(mapped), name);
  }

  /** Drains every agent's outputs. */
  drain(): void {
    for (const [name, core] of this.agents) this.#drainOne(name, core);
  }

  #drainOne(name: string, core: AgentCore): void {
    for (let d = core.pollTransmit(); d; d = core.pollTransmit()) this.#transmit(name, d);
    const ev = this.events.get(name)!;
    for (let e = core.pollEvent(); e; e = core.pollEvent()) ev.push(e);
  }

  #transmit(from: string, d: Datagram): void {
    let kind: SentRecord['kind'] = 'data';
    let useCandidate = false;
    if (looksLikeStun(d.data)) {
      const r = tryDecodeStunMessage(d.data);
      if (r.ok) {
        kind = r.message.cls;
        useCandidate = r.message.attributes.some((a) => a.type === 0x0025);
      }
    }
    this.sent.push({ t: this.now, agent: from, datagram: d, kind, useCandidate });
    const index = this.#index++;
    if (this.muted.has(from)) return;
    if (this.drop?.(d, from, index)) return;
    const src = this.#natOut.get(key(d.local)) ?? d.local;
    let dst = d.remote;
    const to = this.#owner.get(key(dst));
    if (!to) return; // unreachable
    dst = this.#natIn.get(key(dst)) ?? dst;
    this.#queue.push({ at: this.now + this.delayMs, seq: this.#seq++, to, datagram: { local: dst, remote: src, data: d.data } });
  }

  /** Earliest pending event (delivery or agent deadline). */
  next(): number | undefined {
    let t = Infinity;
    for (const p of this.#queue) t = Math.min(t, p.at);
    for (const core of this.agents.values()) {
      const x = core.pollTimeout();
      if (x !== undefined) t = Math.min(t, x);
    }
    return t === Infinity ? undefined : t;
  }

  /** Runs until `until` (virtual ms) or until `stop()` is true; bounded by `maxSteps`. */
  run(until: number, stop?: () => boolean, maxSteps = 200_000): void {
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
        const core = this.agents.get(p.to)!;
        this.delivered.push({ t: this.now, to: p.to, datagram: p.datagram });
        core.handleReceive(this.now, p.datagram);
        this.#drainOne(p.to, core);
      }
      for (const [name, core] of this.agents) {
        const x = core.pollTimeout();
        if (x !== undefined && x <= this.now) {
          core.handleTimeout(this.now);
          this.#drainOne(name, core);
        }
      }
    }
    throw new Error(`driver did not settle within ${maxSteps} steps (now=${this.now})`);
  }

  /** Events of `name` of one type. */
  eventsOf<T extends AgentEvent['type']>(name: string, type: T): Extract<AgentEvent, { type: T }>[] {
    return this.events.get(name)!.filter((e): e is Extract<AgentEvent, { type: T }> => e.type === type);
  }

  /** Requests (checks) sent by `name`. */
  requestsOf(name: string): SentRecord[] {
    return this.sent.filter((s) => s.agent === name && s.kind === 'request');
  }
}

/**
 * Two agents L (controlling) and R (controlled) with host candidates, parameters exchanged both ways. `lBases` and
 * `rBases` are the host addresses; candidates are added in that order with decreasing local preference.
 */
/**
 * L (controlling, 10.0.0.1:5000) and R (controlled, 10.0.0.2:6000), one stream each with its host candidate added,
 * and nothing signalled yet: for tests that script the signalling themselves.
 */
export function twoHostAgents(
  driver: Driver,
  lOpts: Partial<AgentCoreOptions> = {},
  rOpts: Partial<AgentCoreOptions> = {},
): { l: AgentCore; r: AgentCore; lc: LocalCandidate; rc: LocalCandidate } {
  const l = driver.add('L', { role: 'controlling', ...lOpts }, [{ address: '10.0.0.1', port: 5000 }]);
  const r = driver.add('R', { role: 'controlled', ...rOpts }, [{ address: '10.0.0.2', port: 6000 }]);
  l.addStream(1);
  r.addStream(1);
  const lc = host('10.0.0.1', 5000);
  const rc = host('10.0.0.2', 6000);
  l.addLocalCandidate(0, lc);
  r.addLocalCandidate(0, rc);
  return { l, r, lc, rc };
}

export function connectPair(
  driver: Driver,
  opts: {
    l?: Partial<AgentCoreOptions>;
    r?: Partial<AgentCoreOptions>;
    lBases?: TransportAddress[];
    rBases?: TransportAddress[];
    components?: number;
    endOfCandidates?: boolean;
    /** Addresses (of either side) nobody can reach. */
    unreachable?: TransportAddress[];
  } = {},
): { l: AgentCore; r: AgentCore } {
  const lBases = opts.lBases ?? [{ address: '10.0.0.1', port: 5000 }];
  const rBases = opts.rBases ?? [{ address: '10.0.0.2', port: 6000 }];
  const comps = opts.components ?? 1;
  const l = driver.add('L', { role: 'controlling', ...opts.l });
  const r = driver.add('R', { role: 'controlled', ...opts.r });
  l.addStream(comps);
  r.addStream(comps);
  const lCands: LocalCandidate[] = [];
  const rCands: LocalCandidate[] = [];
  lBases.forEach((b, i) => {
    for (let c = 1; c <= comps; c++) {
      const addr = { address: b.address, port: b.port + c - 1 };
      driver.own('L', addr);
      lCands.push(host(addr.address, addr.port, c, 65535 - i, `L${i}`));
    }
  });
  rBases.forEach((b, i) => {
    for (let c = 1; c <= comps; c++) {
      const addr = { address: b.address, port: b.port + c - 1 };
      driver.own('R', addr);
      rCands.push(host(addr.address, addr.port, c, 65535 - i, `R${i}`));
    }
  });
  for (const u of opts.unreachable ?? []) driver.disown(u);
  for (const c of lCands) l.addLocalCandidate(0, c);
  for (const c of rCands) r.addLocalCandidate(0, c);
  l.setRemoteParameters(0, r.getLocalParameters());
  r.setRemoteParameters(0, l.getLocalParameters());
  for (const c of rCands) l.addRemoteCandidate(0, signalled(c));
  for (const c of lCands) r.addRemoteCandidate(0, signalled(c));
  if (opts.endOfCandidates ?? true) {
    l.endOfRemoteCandidates(0);
    r.endOfRemoteCandidates(0);
  }
  return { l, r };
}
