/**
 * Two-agent ICE scenarios on the deterministic virtual network (`icewire/testing`).
 *
 * A scenario is two {@link AgentMachine}s ("a" and "b") on two virtual hosts, each on the public network or behind
 * its own NAT (RFC 4787 mapping/filtering), or both behind one NAT; a STUN server and a TURN server sit on the public
 * network. Signalling is done here, out of band: ICE parameters are exchanged at start, and every `candidate` /
 * `end-of-candidates` event is carried to the peer (trickle, RFC 8838), after a per-candidate delay that a test may
 * choose. The delayed deliveries run on a small machine attached to the network, so they happen in virtual time,
 * in order with the packets.
 *
 * Every random draw comes from the network's seed (`net.random.fork(...)`), and each agent gets its own
 * `GlobalPacer` (or none), so no state is shared between tests: the same seed gives the same run.
 * @module
 */
import { AgentMachine, type AgentMachineEvent, type AgentMachineOptions, type StreamBase } from '../../src/agent-machine.js';
import type { Candidate, CandidateType, LocalCandidate } from '../../src/candidates/candidate.js';
import type { RelayServerConfig } from '../../src/candidates/gatherer.js';
import { MdnsResponder } from '../../src/candidates/mdns.js';
import { GlobalPacer } from '../../src/stun/pacing.js';
import type { AgentState, IceParameters, PairInfo } from '../../src/checklist/types.js';
import type { SansIoMachine } from '../../src/machine.js';
import { NatPresets, type NatBehaviorOptions } from '../../src/testing/nat.js';
import { addStunServer, type StunHost } from '../../src/testing/stun-host.js';
import { addTurnServer, type TurnHost } from '../../src/testing/turn-host.js';
import {
  VirtualNetwork,
  formatTrace,
  type Attachment,
  type Host,
  type LinkConditions,
  type Nat,
} from '../../src/testing/virtual-network.js';
import type { Datagram } from '../../src/types.js';

// ---- NAT kinds ----------------------------------------------------------------------------------------------

/**
 * Where a side sits: `'none'` = a host with a public address; the others are RFC 4787 behaviours of the NAT in front
 * of it (mapping + filtering).
 */
export type NatKind = 'none' | 'full-cone' | 'restricted-cone' | 'port-restricted' | 'symmetric';

/** Short names for the matrix table. */
export const NAT_SHORT: Readonly<Record<NatKind, string>> = {
  none: 'public',
  'full-cone': 'EIM+EIF',
  'restricted-cone': 'EIM+ADF',
  'port-restricted': 'EIM+APDF',
  symmetric: 'APDM+APDF',
};

/** The RFC 4787 behaviour of each NAT kind. */
export function natBehaviour(kind: Exclude<NatKind, 'none'>): NatBehaviorOptions {
  switch (kind) {
    case 'full-cone':
      return NatPresets.fullCone;
    case 'restricted-cone':
      return NatPresets.restrictedCone;
    case 'port-restricted':
      return NatPresets.portRestrictedCone;
    case 'symmetric':
      return NatPresets.symmetric;
  }
}

// ---- options ------------------------------------------------------------------------------------------------

/** One side of a scenario. */
export interface SideOptions {
  /** NAT in front of the host (default `'none'`: public host). Ignored when the scenario has `sameNat`. */
  readonly nat?: NatKind;
  /** Extra NAT options (hairpinning, mapping time-out...), merged over the kind's behaviour. */
  readonly natOptions?: NatBehaviorOptions;
  /**
   * More addresses of a public host (e.g. an IPv6 one for a dual-stack host), each with its own host sockets. Only
   * for `nat: 'none'`.
   */
  readonly extraAddresses?: readonly string[];
  /** Gather server-reflexive candidates from the STUN server (default true). */
  readonly stun?: boolean;
  /** Gather relayed candidates from the TURN server (default false). */
  readonly turn?: boolean;
  /** Initial ICE role. Default: `'controlling'` for a, `'controlled'` for b. */
  readonly role?: 'controlling' | 'controlled';
  /** ICE-lite (RFC 8445 §2.5). */
  readonly lite?: boolean;
  /** Components per stream (default `[1]`). */
  readonly streams?: readonly number[];
  /**
   * Signalling delay (ms) of each candidate this side gathers, before the peer gets it. Default: the scenario's
   * `signallingDelayMs`. End-of-candidates is delivered after the last candidate.
   */
  readonly candidateDelayMs?: (candidate: LocalCandidate) => number;
  /** Which gathered candidates are signalled to the peer at all (default: every one). */
  readonly signal?: (candidate: LocalCandidate) => boolean;
  /** Do not signal end-of-candidates to the peer (the test does it, or never). */
  readonly withholdEndOfCandidates?: boolean;
  /**
   * Hide host candidates behind mDNS names and resolve the peer's (draft-ietf-mmusic-mdns-ice-candidates): an
   * `MdnsResponder` on port 5353 of the host, inside the agent.
   */
  readonly mdns?: boolean;
  /** Per-agent pacer: a fresh `GlobalPacer` (default) or none. Never the process-wide one. */
  readonly pacer?: 'own' | 'none';
  /**
   * ICE-TCP host candidates to gather on each address (RFC 6544): a passive listener on port `5100 + stream`, an
   * active candidate, and/or a simultaneous-open one on port `5200 + stream`. Default none.
   */
  readonly tcp?: readonly ('active' | 'passive' | 'so')[];
  /** Gather UDP host candidates (default true; false for a TCP-only side). */
  readonly udp?: boolean;
  /** Anything else for the agent (timers, nomination...). */
  readonly agent?: Partial<Omit<AgentMachineOptions, 'random' | 'bases' | 'stunServers' | 'turnServers' | 'pacer' | 'streams' | 'role' | 'lite' | 'mdns'>>;
}

/** A whole scenario. */
export interface ScenarioOptions {
  readonly seed: string | number;
  readonly a?: SideOptions;
  readonly b?: SideOptions;
  /** Both hosts behind this one NAT (same LAN); `a.nat`/`b.nat` are then ignored. */
  readonly sameNat?: { readonly kind: Exclude<NatKind, 'none'>; readonly options?: NatBehaviorOptions };
  /** Conditions of the public network (default: 10 ms one way, nothing else). */
  readonly publicConditions?: Partial<LinkConditions>;
  /** Default signalling delay of every candidate and of the parameters, ms (default 0). */
  readonly signallingDelayMs?: number;
  /** Record the packet trace (default true). */
  readonly trace?: boolean;
}

/** What the test sees of one side. */
export interface Side {
  readonly name: 'a' | 'b';
  readonly host: Host;
  readonly nat: Nat | undefined;
  readonly machine: AgentMachine;
  readonly attachment: Attachment<AgentMachineEvent>;
  /** Local candidates gathered (as reported by `candidate` events), per stream. */
  readonly gathered: LocalCandidate[][];
  /** Remote candidates delivered to this side, per stream. */
  readonly delivered: Candidate[][];
  /** Virtual time and value of every `state` event. */
  readonly states: { readonly time: number; readonly state: AgentState }[];
  /** Data received: stream, component, text. */
  readonly received: { readonly time: number; readonly stream: number; readonly component: number; readonly text: string }[];
  /** Times end-of-candidates was delivered to this side, per stream. */
  readonly endOfCandidatesAt: (number | undefined)[];
}

// ---- the signalling channel ---------------------------------------------------------------------------------

/**
 * Deferred actions in virtual time: a sans-IO machine that never sends, whose time-outs run the queued actions. It is
 * attached to a host with no traffic, so the network honours its deadlines in order with everything else.
 */
class SignallingChannel implements SansIoMachine<never> {
  readonly #queue: { readonly time: number; readonly seq: number; readonly run: (now: number) => void }[] = [];
  #seq = 0;

  at(time: number, run: (now: number) => void): void {
    this.#queue.push({ time, seq: this.#seq++, run });
    this.#queue.sort((x, y) => x.time - y.time || x.seq - y.seq);
  }

  handleReceive(_now: number, _d: Datagram): boolean {
    return false;
  }

  handleTimeout(now: number): void {
    while (this.#queue.length > 0 && this.#queue[0]!.time <= now) this.#queue.shift()!.run(now);
  }

  pollTransmit(): Datagram | undefined {
    return undefined;
  }

  pollEvent(): never | undefined {
    return undefined;
  }

  pollTimeout(): number | undefined {
    return this.#queue[0]?.time;
  }
}

/**
 * The signalled form of a local candidate (what `a=candidate` carries): no base, socket or server, and the mDNS name
 * instead of the address when the candidate has one.
 */
export function signalled(c: LocalCandidate): Candidate {
  return {
    foundation: c.foundation,
    component: c.component,
    transport: c.transport,
    priority: c.priority,
    address: c.mdnsName ?? c.address,
    port: c.port,
    type: c.type,
    ...(c.relatedAddress !== undefined ? { relatedAddress: c.relatedAddress } : {}),
    ...(c.relatedPort !== undefined ? { relatedPort: c.relatedPort } : {}),
    ...(c.tcpType !== undefined ? { tcpType: c.tcpType } : {}),
  };
}

/** Host port of (stream, component): 5000 + 10·stream + component − 1. */
export const basePort = (stream: number, component: number): number => 5000 + 10 * stream + component - 1;

// ---- the scenario -------------------------------------------------------------------------------------------

/** A built scenario: the network, the servers, both sides, and helpers to drive them. */
export class Scenario {
  readonly net: VirtualNetwork;
  readonly stun: StunHost;
  readonly turn: TurnHost;
  readonly a: Side;
  readonly b: Side;
  readonly #signalling = new SignallingChannel();
  readonly #options: ScenarioOptions;
  /** Latest time a delivery from each side is scheduled (keeps end-of-candidates after the candidates). */
  readonly #lastDelivery = { a: 0, b: 0 };

  constructor(options: ScenarioOptions) {
    this.#options = options;
    const net = new VirtualNetwork({
      seed: options.seed,
      ...(options.publicConditions ? { publicConditions: options.publicConditions } : {}),
      ...(options.trace !== undefined ? { trace: options.trace } : {}),
    });
    this.net = net;
    this.stun = addStunServer(net, { address: '198.51.100.1' });
    this.turn = addTurnServer(net, { address: '198.51.100.2', users: { a: 'a-secret', b: 'b-secret' } });
    const signallingHost = net.addHost({ name: 'signalling', address: '198.51.100.250' });
    signallingHost.attach(this.#signalling, { name: 'signalling' });
    let shared: Nat | undefined;
    if (options.sameNat) {
      shared = net.addNat({ name: 'nat', publicIp: '203.0.113.100', ...natBehaviour(options.sameNat.kind), ...options.sameNat.options });
    }
    this.a = this.#side('a', options.a ?? {}, shared, '203.0.113.10', '203.0.113.1');
    this.b = this.#side('b', options.b ?? {}, shared, '203.0.113.20', '203.0.113.2');
  }

  #side(name: 'a' | 'b', o: SideOptions, shared: Nat | undefined, publicIp: string, natIp: string): Side {
    const net = this.net;
    const kind = o.nat ?? 'none';
    let nat = shared;
    if (!nat && kind !== 'none') nat = net.addNat({ name: `nat-${name}`, publicIp: natIp, ...natBehaviour(kind), ...o.natOptions });
    const host = nat ? net.addHost({ name, network: nat.lan }) : net.addHost({ name, address: [publicIp, ...(o.extraAddresses ?? [])] });
    const streams = o.streams ?? [1];
    const bases: StreamBase[] = [];
    for (const ip of host.ips) {
      streams.forEach((components, s) => {
        for (let c = 1; c <= components; c++) {
          if (o.udp !== false) bases.push({ address: { address: ip, port: basePort(s, c) }, component: c, stream: s });
          for (const tcpType of o.tcp ?? []) {
            const port = tcpType === 'passive' ? basePort(s, c) + 100 : tcpType === 'so' ? basePort(s, c) + 200 : 0;
            bases.push({ address: { address: ip, port }, component: c, stream: s, transport: 'tcp', tcpType });
          }
        }
      });
    }
    const turnServers: RelayServerConfig[] = o.turn
      ? [{ server: this.turn.address, username: name, credential: `${name}-secret` }]
      : [];
    const mdnsLocal = host.address(5353);
    const mdns = o.mdns ? { responder: new MdnsResponder({ random: net.random.fork(`mdns:${name}`), local: mdnsLocal }), local: mdnsLocal } : undefined;
    const machine = new AgentMachine({
      ...(mdns ? { mdns } : {}),
      ...o.agent,
      random: net.random.fork(`agent:${name}`),
      role: o.role ?? (name === 'a' ? 'controlling' : 'controlled'),
      ...(o.lite ? { lite: true } : {}),
      streams,
      bases,
      stunServers: o.stun === false ? [] : [this.stun.address],
      turnServers,
      ...(o.pacer === 'none' ? {} : { pacer: new GlobalPacer() }),
    });
    // Events are drained only when the network runs, after `side` is assigned.
    let side: Side | undefined;
    const attachment = host.attach<AgentMachineEvent>(machine, { name: `agent-${name}`, onEvent: (e) => this.#onEvent(side!, o, e) });
    side = {
      name,
      host,
      nat,
      machine,
      attachment,
      gathered: streams.map(() => []),
      delivered: streams.map(() => []),
      states: [],
      received: [],
      endOfCandidatesAt: streams.map(() => undefined),
    };
    return side;
  }

  /** The other side. */
  peer(side: Side): Side {
    return side === this.a ? this.b : this.a;
  }

  #sideOptions(side: Side): SideOptions {
    return (side.name === 'a' ? this.#options.a : this.#options.b) ?? {};
  }

  #onEvent(side: Side, o: SideOptions, e: AgentMachineEvent): void {
    const now = this.net.now;
    switch (e.type) {
      case 'state':
        side.states.push({ time: now, state: e.state });
        return;
      case 'data':
        side.received.push({ time: now, stream: e.stream, component: e.component, text: new TextDecoder().decode(e.data) });
        return;
      case 'candidate': {
        side.gathered[e.stream]!.push(e.candidate);
        if (o.signal && !o.signal(e.candidate)) return;
        const delay = o.candidateDelayMs?.(e.candidate) ?? this.#options.signallingDelayMs ?? 0;
        this.#deliverCandidate(side, e.stream, signalled(e.candidate), now + delay);
        return;
      }
      case 'end-of-candidates':
        if (!o.withholdEndOfCandidates) this.#deliverEndOfCandidates(side, e.stream, now + (this.#options.signallingDelayMs ?? 0));
        return;
      default:
        return;
    }
  }

  #schedule(from: Side, time: number, run: (now: number) => void): void {
    const t = Math.max(time, this.net.now);
    this.#lastDelivery[from.name] = Math.max(this.#lastDelivery[from.name], t);
    if (t <= this.net.now) run(this.net.now);
    else this.#signalling.at(t, run);
  }

  #deliverCandidate(from: Side, stream: number, candidate: Candidate, time: number): void {
    const to = this.peer(from);
    this.#schedule(from, time, (now) => {
      if (to.machine.core.state === 'closed') return;
      to.delivered[stream]!.push(candidate);
      to.machine.addRemoteCandidate(now, stream, candidate);
    });
  }

  #deliverEndOfCandidates(from: Side, stream: number, time: number): void {
    const to = this.peer(from);
    this.#schedule(from, Math.max(time, this.#lastDelivery[from.name]), (now) => {
      if (to.machine.core.state === 'closed') return;
      to.endOfCandidatesAt[stream] = now;
      to.machine.endOfRemoteCandidates(stream);
    });
  }

  /** Signals `from`'s current ICE parameters to its peer (every stream), after the signalling delay. */
  sendParameters(from: Side, delayMs = this.#options.signallingDelayMs ?? 0): void {
    const to = this.peer(from);
    const params: IceParameters = from.machine.core.getLocalParameters();
    this.#schedule(from, this.net.now + delayMs, () => {
      for (let s = 0; s < to.machine.core.streamCount; s++) to.machine.setRemoteParameters(s, params);
    });
  }

  /** Re-signals every candidate `from` has gathered, then end-of-candidates (after an ICE restart). */
  resendCandidates(from: Side, delayMs = this.#options.signallingDelayMs ?? 0): void {
    const time = this.net.now + delayMs;
    from.gathered.forEach((list, stream) => {
      const filter = this.#sideOptions(from).signal;
      for (const c of list) if (!filter || filter(c)) this.#deliverCandidate(from, stream, signalled(c), time);
      if (!this.#sideOptions(from).withholdEndOfCandidates) this.#deliverEndOfCandidates(from, stream, time);
    });
  }

  /** Starts both agents: parameters both ways, then gathering (candidates trickle as they come). */
  start(): this {
    this.sendParameters(this.a);
    this.sendParameters(this.b);
    this.a.machine.gather(this.net.now);
    this.b.machine.gather(this.net.now);
    return this;
  }

  /**
   * ICE restart initiated by `initiator` (RFC 8445 §9): it takes new credentials and signals them; the peer, on
   * receiving them, restarts too and answers with its own; both re-signal their candidates.
   */
  restart(initiator: Side): void {
    const responder = this.peer(initiator);
    const delay = this.#options.signallingDelayMs ?? 0;
    initiator.machine.restart(this.net.now);
    const offer = initiator.machine.core.getLocalParameters();
    this.#schedule(initiator, this.net.now + delay, (now) => {
      // The answerer takes new credentials before it applies the offer, so its new session uses them.
      responder.machine.restart(now);
      for (let s = 0; s < responder.machine.core.streamCount; s++) responder.machine.setRemoteParameters(s, offer);
      const answer = responder.machine.core.getLocalParameters();
      this.#schedule(responder, now + delay, () => {
        for (let s = 0; s < initiator.machine.core.streamCount; s++) initiator.machine.setRemoteParameters(s, answer);
        // Candidates go after the answer: a new remote ufrag starts a new session that forgets remote candidates.
        this.resendCandidates(responder, 0);
        this.resendCandidates(initiator, delay);
      });
    });
  }

  /** Runs `action` at virtual time `time` (through the signalling channel, in order with the network's events). */
  at(time: number, action: (now: number) => void): void {
    this.#signalling.at(Math.max(time, this.net.now), action);
  }

  /** Runs `action` every `periodMs`, starting one period from now, while it returns true. */
  every(periodMs: number, action: (now: number) => boolean): void {
    const tick = (now: number): void => {
      if (action(now)) this.#signalling.at(now + periodMs, tick);
    };
    this.#signalling.at(this.net.now + periodMs, tick);
  }

  /** Signals end-of-candidates from `from` to its peer now (for sides with `withholdEndOfCandidates`). */
  signalEndOfCandidates(from: Side, stream = 0): void {
    this.#deliverEndOfCandidates(from, stream, this.net.now);
  }

  // ---- queries ----

  /** Current state of a side. */
  state(side: Side): AgentState {
    return side.machine.core.state;
  }

  /** Both sides connected or completed. */
  connected(): boolean {
    const ok = (s: AgentState) => s === 'connected' || s === 'completed';
    return ok(this.state(this.a)) && ok(this.state(this.b));
  }

  /** Both sides have a selected pair on every component of every stream. */
  selectedEverywhere(): boolean {
    for (const side of [this.a, this.b]) {
      const core = side.machine.core;
      for (let s = 0; s < core.streamCount; s++) {
        const comps = (this.#sideOptions(side).streams ?? [1])[s] ?? 1;
        for (let c = 1; c <= comps; c++) if (!core.getSelectedPair(s, c)) return false;
      }
    }
    return true;
  }

  /** Selected pair of a side. */
  selected(side: Side, stream = 0, component = 1): PairInfo | undefined {
    return side.machine.core.getSelectedPair(stream, component);
  }

  /** True when a's selected pair is b's selected pair seen from the other end (same two transport addresses). */
  sameSelectedPair(stream = 0, component = 1): boolean {
    const pa = this.selected(this.a, stream, component);
    const pb = this.selected(this.b, stream, component);
    if (!pa || !pb) return false;
    return (
      pa.local.address === pb.remote.address &&
      pa.local.port === pb.remote.port &&
      pa.remote.address === pb.local.address &&
      pa.remote.port === pb.local.port
    );
  }

  /** Sends a text from `side` and runs until the peer has it; returns whether it arrived within `limitMs`. */
  exchange(side: Side, text: string, stream = 0, component = 1, limitMs = 2000): boolean {
    const peer = this.peer(side);
    if (!side.machine.send(this.net.now, stream, component, new TextEncoder().encode(text))) return false;
    return this.net.runUntilTrue(() => peer.received.some((r) => r.text === text && r.stream === stream && r.component === component), limitMs);
  }

  /**
   * Runs until both sides are connected with a pair to send on everywhere (the first valid pairs, before any
   * nomination: RFC 8445 §12.1), for at most `limitMs` of virtual time.
   */
  runUntilConnected(limitMs = 60_000): boolean {
    return this.net.runUntilTrue(() => this.connected() && this.selectedEverywhere(), limitMs);
  }

  /** Runs until both sides completed: every component nominated (RFC 8445 §8.1.2), the agents settled. */
  runUntilCompleted(limitMs = 60_000): boolean {
    return this.net.runUntilTrue(() => this.state(this.a) === 'completed' && this.state(this.b) === 'completed' && this.selectedEverywhere(), limitMs);
  }

  /** A text image of the run: packet trace plus both agents' events, for determinism checks. */
  transcript(): string {
    const events = [this.a, this.b].map((s) =>
      s.attachment.events.map((e) => `${s.name} ${JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? [...v] : v))}`),
    );
    return `${formatTrace(this.net.trace)}\n${events.flat().join('\n')}`;
  }
}

/** Builds a scenario (does not start it). */
export function scenario(options: ScenarioOptions): Scenario {
  return new Scenario(options);
}

/** Candidate types of a selected pair, local first. */
export function pairTypes(p: PairInfo | undefined): readonly [CandidateType, CandidateType] | undefined {
  return p ? [p.local.type, p.remote.type] : undefined;
}
