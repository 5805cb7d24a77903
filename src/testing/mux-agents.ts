/**
 * Many `AgentMachine`s behind one virtual UDP port, routed by the same {@link UdpMuxRouter} `IceUdpMux` uses: the
 * virtual-time stand-in for `IceUdpMux` + `IceAgent` (attach it to a host like any machine). Each agent is an
 * `AgentMachine` whose only base is the mux address; commands go through {@link MuxedAgents.command} so that their
 * output is drained and the agent's ufrags follow restarts (the previous ufrag stays routed while the previous
 * session carries data, as `IceAgent` does on a real mux).
 * @module
 */
import type { AgentMachine, AgentMachineEvent } from '../agent-machine.js';
import type { SansIoMachine } from '../machine.js';
import { UdpMuxRouter, type UdpMuxLimits } from '../stun/mux-router.js';
import type { Datagram, TransportAddress } from '../types.js';

/** An event of one agent behind the mux. */
export interface MuxedAgentEvent {
  readonly agent: number;
  readonly event: AgentMachineEvent;
}

interface Entry {
  readonly machine: AgentMachine;
  deadline: number;
}

/** Agents behind one virtual port. */
export class MuxedAgents implements SansIoMachine<MuxedAgentEvent> {
  readonly local: TransportAddress;
  readonly router: UdpMuxRouter;
  readonly #agents = new Map<number, Entry>();
  readonly #transmits: Datagram[] = [];
  #transmitHead = 0;
  readonly #events: MuxedAgentEvent[] = [];
  #eventHead = 0;

  constructor(local: TransportAddress, limits: UdpMuxLimits = {}) {
    this.local = local;
    this.router = new UdpMuxRouter(limits);
  }

  /** Agents behind the port. */
  get size(): number {
    return this.#agents.size;
  }

  /** Adds an agent (its bases should be `[ { address: local, component: 1 } ]`) and starts its gathering. */
  add(now: number, machine: AgentMachine): number {
    const id = this.router.register(machine.core.getLocalParameters(0).ufrag);
    this.#agents.set(id, { machine, deadline: Infinity });
    machine.gather(now);
    this.#flush(now, id);
    return id;
  }

  machine(id: number): AgentMachine | undefined {
    return this.#agents.get(id)?.machine;
  }

  /** Runs a command on an agent (`setRemoteParameters`, `addRemoteCandidate`, `restart`, ...) and drains it. */
  command(now: number, id: number, f: (m: AgentMachine) => void): void {
    const e = this.#agents.get(id);
    if (!e) throw new RangeError(`no agent ${id} behind the mux`);
    f(e.machine);
    this.#flush(now, id);
  }

  /** Closes an agent: off the router at once (its routes go), then closed. */
  remove(now: number, id: number): void {
    const e = this.#agents.get(id);
    if (!e) return;
    this.router.unregister(id);
    this.#agents.delete(id);
    e.machine.close(now);
    // What it sends while closing (nothing on a host-only agent) leaves without teaching the router anything.
    for (let d = e.machine.pollTransmit(); d; d = e.machine.pollTransmit()) this.#transmits.push(d);
    for (let ev = e.machine.pollEvent(); ev; ev = e.machine.pollEvent()) this.#events.push({ agent: id, event: ev });
  }

  handleReceive(now: number, datagram: Datagram): boolean {
    if (datagram.local.port !== this.local.port || datagram.local.address !== this.local.address) return false;
    const r = this.router.route(now, datagram);
    if (typeof r === 'number') {
      this.#agents.get(r)!.machine.handleReceive(now, datagram);
      this.#flush(now, r);
    }
    return true; // the port is the mux's: a drop is counted in the router's stats
  }

  handleTimeout(now: number): void {
    for (const [id, e] of this.#agents) {
      if (e.deadline > now) continue;
      e.machine.handleTimeout(now);
      this.#flush(now, id);
    }
  }

  pollTransmit(): Datagram | undefined {
    if (this.#transmitHead >= this.#transmits.length) {
      this.#transmits.length = this.#transmitHead = 0;
      return undefined;
    }
    return this.#transmits[this.#transmitHead++];
  }

  pollEvent(): MuxedAgentEvent | undefined {
    if (this.#eventHead >= this.#events.length) {
      this.#events.length = this.#eventHead = 0;
      return undefined;
    }
    return this.#events[this.#eventHead++];
  }

  pollTimeout(): number | undefined {
    let min = Infinity;
    for (const e of this.#agents.values()) if (e.deadline < min) min = e.deadline;
    return min === Infinity ? undefined : min;
  }

  /** Drains one agent: transmits teach the router, events are tagged, the ufrags follow restarts. */
  #flush(now: number, id: number): void {
    const e = this.#agents.get(id);
    if (!e) return;
    const m = e.machine;
    for (let d = m.pollTransmit(); d; d = m.pollTransmit()) {
      this.router.noteTransmit(now, id, d);
      this.#transmits.push(d);
    }
    for (let ev = m.pollEvent(); ev; ev = m.pollEvent()) this.#events.push({ agent: id, event: ev });
    e.deadline = m.pollTimeout() ?? Infinity;
    const current = m.core.getLocalParameters(0).ufrag;
    const ufrags = this.router.ufragsOf(id);
    if (ufrags.length === 1 && ufrags[0] === current) return;
    const holds = m.core.holdsPreviousSession;
    for (const u of [...ufrags]) if (u !== current && !holds) this.router.removeUfrag(id, u);
    if (!this.router.ufragsOf(id).includes(current)) this.router.addUfrag(id, current);
  }
}
