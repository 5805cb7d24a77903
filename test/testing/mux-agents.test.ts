/**
 * Virtual time: 1,000 ICE-lite agents behind one UDP port (MuxedAgents, the router IceUdpMux uses) with 1,000 full
 * peers, then restarts, closes and address reuse. Peers are grouped on one host (one machine per port) so the
 * virtual network runs two attachments, not two thousand.
 */
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent } from '../../src/agent-machine.js';
import { parseCandidate } from '../../src/candidates/grammar.js';
import type { SansIoMachine } from '../../src/machine.js';
import { MuxedAgents, type MuxedAgentEvent } from '../../src/testing/mux-agents.js';
import { VirtualNetwork } from '../../src/testing/virtual-network.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

const MUX: TransportAddress = { address: '10.0.0.1', port: 3478 };
const PEER_IP = '10.1.0.1';

/** Peers on one host, one AgentMachine per local port. */
class PeerGroup implements SansIoMachine<{ port: number; event: AgentMachineEvent }> {
  readonly machines = new Map<number, AgentMachine>();
  readonly #deadline = new Map<number, number>();
  readonly #out: Datagram[] = [];
  readonly #events: { port: number; event: AgentMachineEvent }[] = [];
  add(now: number, port: number, m: AgentMachine): void {
    this.machines.set(port, m);
    m.gather(now);
    this.flush(port);
  }
  command(port: number, f: (m: AgentMachine) => void): void {
    f(this.machines.get(port)!);
    this.flush(port);
  }
  remove(now: number, port: number): void {
    this.machines.get(port)?.close(now);
    this.flush(port);
    this.machines.delete(port);
    this.#deadline.delete(port);
  }
  flush(port: number): void {
    const m = this.machines.get(port)!;
    for (let d = m.pollTransmit(); d; d = m.pollTransmit()) this.#out.push(d);
    for (let e = m.pollEvent(); e; e = m.pollEvent()) this.#events.push({ port, event: e });
    this.#deadline.set(port, m.pollTimeout() ?? Infinity);
  }
  handleReceive(now: number, d: Datagram): boolean {
    const m = this.machines.get(d.local.port);
    if (!m) return false;
    m.handleReceive(now, d);
    this.flush(d.local.port);
    return true;
  }
  handleTimeout(now: number): void {
    for (const [port, t] of this.#deadline) {
      if (t > now) continue;
      this.machines.get(port)!.handleTimeout(now);
      this.flush(port);
    }
  }
  pollTransmit(): Datagram | undefined {
    return this.#out.shift();
  }
  pollEvent(): { port: number; event: AgentMachineEvent } | undefined {
    return this.#events.shift();
  }
  pollTimeout(): number | undefined {
    let min = Infinity;
    for (const t of this.#deadline.values()) if (t < min) min = t;
    return min === Infinity ? undefined : min;
  }
}

/** The host candidate each side signals (host-only agents: one candidate on their one base). */
const host = (address: string, port: number) => parseCandidate(`candidate:1 1 udp 2130706431 ${address} ${port} typ host`);
const up = (s: string | undefined) => s === 'connected' || s === 'completed';

function setup() {
  const net = new VirtualNetwork({ seed: 'mux', trace: false, maxSteps: 50_000_000, maxStepsPerInstant: 5_000_000 });
  const serverHost = net.addHost({ name: 'sfu', address: MUX.address });
  const peerHost = net.addHost({ name: 'peers', address: PEER_IP });
  const mux = new MuxedAgents(MUX);
  const peers = new PeerGroup();
  const agentState = new Map<number, string>();
  const peerState = new Map<number, string>();
  /** Data each mux agent received: [agent id, text]. */
  const received: [number, string][] = [];
  const peerReceived: [number, string][] = [];
  serverHost.attach<MuxedAgentEvent>(mux, {
    onEvent: ({ agent, event }) => {
      if (event.type === 'state') agentState.set(agent, event.state);
      if (event.type === 'data') received.push([agent, new TextDecoder().decode(event.data)]);
    },
  });
  peerHost.attach(peers, {
    onEvent: ({ port, event }) => {
      if (event.type === 'state') peerState.set(port, event.state);
      if (event.type === 'data') peerReceived.push([port, new TextDecoder().decode(event.data)]);
    },
  });
  /** A lite agent on the mux and a full peer on `port`, signalled both ways. Returns the agent's id. */
  const connect = (port: number, tag: string): number => {
    const agent = new AgentMachine({ random: net.random.fork(`a${tag}`), bases: [{ address: MUX, component: 1 }], lite: true, role: 'controlled' });
    const id = mux.add(net.now, agent);
    const peer = new AgentMachine({ random: net.random.fork(`p${tag}`), bases: [{ address: { address: PEER_IP, port }, component: 1 }], role: 'controlling' });
    peers.add(net.now, port, peer);
    signal(id, port);
    return id;
  };
  const signal = (id: number, port: number) => {
    const agent = mux.machine(id)!;
    const peer = peers.machines.get(port)!;
    mux.command(net.now, id, (m) => {
      m.setRemoteParameters(0, peer.core.getLocalParameters(0));
      m.addRemoteCandidate(net.now, 0, host(PEER_IP, port));
      m.endOfRemoteCandidates(0);
    });
    peers.command(port, (m) => {
      m.setRemoteParameters(0, agent.core.getLocalParameters(0));
      m.addRemoteCandidate(net.now, 0, host(MUX.address, MUX.port));
      m.endOfRemoteCandidates(0);
    });
  };
  const sendData = (port: number, text: string) => peers.command(port, (m) => m.send(net.now, 0, 1, new TextEncoder().encode(text)));
  return { net, mux, peers, agentState, peerState, received, peerReceived, connect, signal, sendData };
}

describe('MuxedAgents: 1,000 agents on one port in virtual time', () => {
  it('1,000 lite agents and 1,000 peers connect; data reaches its own agent; restarts, closes and address reuse keep routing right', () => {
    const N = 1000;
    const s = setup();
    const { net, mux } = s;
    const idOf = new Map<number, number>(); // peer port -> agent id
    for (let i = 0; i < N; i++) idOf.set(20000 + i, s.connect(20000 + i, String(i)));
    const allUp = () => [...idOf].every(([port, id]) => up(s.agentState.get(id)) && up(s.peerState.get(port)));
    expect(net.runUntilTrue(allUp, 20_000)).toBe(true);
    expect(mux.router.stats).toMatchObject({ agents: N, ufrags: N, conflicts: 0 });

    // Data: 0x80 first byte (RTP range), from each peer to its agent.
    const dataRound = (label: string) => {
      s.received.length = 0;
      for (const port of idOf.keys()) s.sendData(port, `\x80${label}${port}`);
      net.runFor(200);
      const byAgent = new Map(s.received.map(([id, text]) => [id, text]));
      expect(s.received.length).toBe(idOf.size);
      for (const [port, id] of idOf) expect(byAgent.get(id)).toBe(`\x80${label}${port}`);
    };
    dataRound('first');

    // 100 peers restart (RFC 8445 §9); their agents follow and take new ufrags; the old ones go after selection.
    const restarted = [...idOf].slice(0, 100);
    const oldUfrags = restarted.map(([, id]) => mux.machine(id)!.core.getLocalParameters(0).ufrag);
    for (const [port, id] of restarted) {
      s.peers.command(port, (m) => m.restart(net.now));
      const peer = s.peers.machines.get(port)!;
      mux.command(net.now, id, (m) => m.setRemoteParameters(0, peer.core.getLocalParameters(0)));
    }
    expect(mux.router.stats.ufrags).toBe(N + 100); // the old ones stay while the previous pairs carry data
    for (const [port, id] of restarted) s.signal(id, port);
    expect(net.runUntilTrue(() => mux.router.stats.ufrags === N, 10_000)).toBe(true);
    for (const [i, [, id]] of restarted.entries()) expect(mux.router.ufragsOf(id)).not.toContain(oldUfrags[i]);
    net.runFor(500);
    dataRound('restarted');

    // 100 agents close with their peers: routes go at once; new peers reuse the same ports with new agents.
    const closed = [...idOf].slice(100, 200);
    const routesBefore = mux.router.stats.routes;
    for (const [port, id] of closed) {
      mux.remove(net.now, id);
      s.peers.remove(net.now, port);
      idOf.delete(port);
    }
    expect(mux.router.stats.agents).toBe(N - 100);
    expect(mux.router.stats.routes).toBeLessThanOrEqual(routesBefore - 100);
    for (const [port] of closed) idOf.set(port, s.connect(port, `reuse${port}`));
    expect(net.runUntilTrue(allUp, 10_000)).toBe(true);
    dataRound('reused');

    // 50 peers vanish without their agents closing; new peers at the same ports talk to new agents. The old agents
    // keep the 5-tuples until they have not answered there for takeoverAfterMs (10 s): then data follows the peer.
    const vanished = [...idOf].slice(200, 250);
    for (const [port] of vanished) {
      s.peers.remove(net.now, port);
      idOf.delete(port);
    }
    for (const [port] of vanished) idOf.set(port, s.connect(port, `again${port}`));
    expect(net.runUntilTrue(allUp, 10_000)).toBe(true);
    net.runFor(17_000); // a consent answer (every 4-6 s, RFC 7675) more than 10 s after the old one
    dataRound('takeover');
    expect(mux.router.stats.takeovers).toBeGreaterThanOrEqual(50);
    const st = mux.router.stats;
    expect(st.dropped['unknown-ufrag']).toBe(0);
  }, 120_000);
});
