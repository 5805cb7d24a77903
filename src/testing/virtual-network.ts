/**
 * A deterministic discrete-event network for running whole NAT topologies in virtual time (pion's vnet, run on a
 * virtual clock; the stepping follows quinn-proto's `Pair::step`/`drive_bounded` and str0m's `progress`).
 *
 * - A `VirtualNetwork` owns the clock, a seeded generator, one public network and the event queue.
 * - `Network`s carry link conditions (delay, jitter, loss, reordering, duplication, MTU) applied on every hop
 *   (`network.ts`).
 * - `Host`s own IP addresses on networks; sans-IO machines (`SansIoMachine`) are attached to hosts, receive every
 *   datagram addressed to any port of the host's addresses, and send what they `pollTransmit` (the `local` address
 *   must be one of the host's, else the datagram is dropped as `'bad-source'`) (`host.ts`).
 * - `Nat`s join a private LAN to an outside network with RFC 4787 behaviour (`nat-node.ts` over `nat.ts`). NATs nest
 *   (a NAT's outside may be another NAT's LAN).
 * - Packets in flight wait in `packet-queue.ts`; this file routes them and runs the clock.
 *
 * Every run method advances to the earliest pending event (a packet arrival or any machine's `pollTimeout`), so a
 * minute of virtual time costs only the events in it. Step bounds make livelocks fail loudly with
 * `StepLimitError`. Same seed and same calls give the same run, event for event.
 * @module
 */
import { IcewireError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import { formatAddress, type Datagram, type TransportAddress } from '../types.js';
import { Host, attachmentPush, hostAttachments, hostNode, installHostNetworkHooks, type Attachment, type HostOptions } from './host.js';
import { NatTranslator } from './nat.js';
import { Nat, natNodes, type NatOptions } from './nat-node.js';
import {
  AddressPool,
  DEFAULT_LAN_CONDITIONS,
  DEFAULT_PUBLIC_CONDITIONS,
  Network,
  isMulticast,
  mergeConditions,
  networkNodes,
  reserveAddress,
  type LinkConditions,
  type NodeRef,
} from './network.js';
import { heapPop, heapPush, type Packet, type QueuedPacket, type TcpSegment } from './packet-queue.js';
import { SeededRandom, type Seed } from './random.js';
import type { DropReason, TraceEntry } from './trace.js';

// Moved to their own files; re-exported so `icewire/testing` and this module keep their exports.
export { DEFAULT_LAN_CONDITIONS, DEFAULT_PUBLIC_CONDITIONS, Network, type LinkConditions } from './network.js';
export { formatTrace, formatTraceEntry, type DropReason, type TraceEntry } from './trace.js';
export { Attachment, Host, type AttachOptions, type HostOptions } from './host.js';
export { Nat, type NatOptions } from './nat-node.js';

// ---- public value types -------------------------------------------------------------------------------------

/** Counters over the whole run. */
export interface NetworkStats {
  /** Datagrams emitted by hosts. */
  readonly sent: number;
  /** Datagrams claimed by a machine. */
  readonly delivered: number;
  /** Datagrams dropped, by reason. */
  readonly dropped: Readonly<Partial<Record<DropReason, number>>>;
  /** Steps taken (packet arrivals plus machine time-outs). */
  readonly steps: number;
}

/** Thrown when a run exceeds its step bound: the sign of a livelock (a timer that never advances, a ping-pong). */
export class StepLimitError extends IcewireError {
  /** Virtual time when the bound was hit. */
  readonly now: number;
  /** Steps taken in the failing call (or at the current instant, for `kind: 'instant'`). */
  readonly steps: number;
  readonly kind: 'total' | 'instant' | 'drain';
  /** The last steps taken, newest last, for diagnosis. */
  readonly recent: readonly string[];
  constructor(kind: 'total' | 'instant' | 'drain', steps: number, now: number, recent: readonly string[]) {
    const what =
      kind === 'total'
        ? `${steps} steps in one run call`
        : kind === 'instant'
          ? `${steps} steps without the clock advancing`
          : `machines kept producing output for ${steps} drain rounds`;
    super('ERR_STEP_LIMIT', `virtual network step limit: ${what} (t=${now} ms). Recent:\n  ${recent.join('\n  ')}`);
    this.kind = kind;
    this.steps = steps;
    this.now = now;
    this.recent = recent;
  }
}

/** Options of a `VirtualNetwork`. */
export interface VirtualNetworkOptions {
  /** Seed of every random draw (loss, jitter, NAT ports, and the `random` forks given to machines). Default 1. */
  readonly seed?: Seed;
  /** Virtual time at start, ms. Default 0. */
  readonly startMs?: number;
  /** Conditions of the public network (merged over `DEFAULT_PUBLIC_CONDITIONS`). */
  readonly publicConditions?: Partial<LinkConditions>;
  /** Prefix addresses are drawn from when `addHost`/`addNat` give none on the public network. Default 203.0.113.0/24. */
  readonly publicPrefix?: string;
  /** Step bound of one run call (`drive`, `runUntil`, `runWhile`...). Default 1 000 000. */
  readonly maxSteps?: number;
  /** Step bound without the clock advancing (a zero-delay ping-pong or a stuck timer). Default 10 000. */
  readonly maxStepsPerInstant?: number;
  /** Record the trace (default true). Turn off for long benchmarks. */
  readonly trace?: boolean;
}

// ---- internals ----------------------------------------------------------------------------------------------

interface Next {
  readonly time: number;
  readonly packet?: QueuedPacket;
  readonly attachment?: Attachment<unknown>;
}

const MAX_HOPS = 16;

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}

/**
 * A machine that takes TCP connections the way `AgentMachine` and `AgentCore` do (ICE-TCP, RFC 6544): it asks for
 * one with a `tcp-connect` event and gives one up with `tcp-close`; the network answers with these calls. A SYN that
 * reaches a host is offered to each such machine (`tcpAccepted`); none taking it resets the attempt.
 */
export interface TcpMachine {
  tcpConnected(now: number, id: string, local: TransportAddress): boolean;
  tcpConnectFailed(now: number, id: string): void;
  tcpAccepted(now: number, local: TransportAddress, remote: TransportAddress): string | undefined;
  tcpClosed(now: number, id: string): void;
}

function isTcpMachine(m: unknown): m is TcpMachine & SansIoMachine<unknown> {
  return typeof (m as Partial<TcpMachine>).tcpAccepted === 'function' && typeof (m as Partial<TcpMachine>).tcpConnected === 'function';
}

interface TcpEnd {
  readonly host: Host;
  readonly attachment: Attachment<unknown>;
  readonly id: string;
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  state: 'connecting' | 'open';
}

const EMPTY = new Uint8Array(0);

const hostIds = new WeakMap<Host, number>();
let nextHostId = 0;

/** A 5-tuple on one host (addresses of hosts on different LANs may be equal). */
function tcpKey(host: Host, local: TransportAddress, remote: TransportAddress): string {
  let id = hostIds.get(host);
  if (id === undefined) hostIds.set(host, (id = nextHostId++));
  return `${id}|${local.address}|${local.port}|${remote.address}|${remote.port}`;
}

/**
 * The simulator: clock, seeded generator, networks, hosts, NATs and the event queue. See the module docs.
 *
 * @example
 * ```ts
 * import type { AgentMachine } from 'icewire/core';
 * import { VirtualNetwork, NatPresets } from 'icewire/testing';
 * declare const machineA: AgentMachine, machineB: AgentMachine; // yours, bound to the hosts' addresses
 * const net = new VirtualNetwork({ seed: 7 });
 * const nat = net.addNat({ ...NatPresets.symmetric, publicIp: '203.0.113.10' });
 * const a = net.addHost({ name: 'a', network: nat.lan }); // 192.168.1.2
 * const b = net.addHost({ name: 'b', address: '198.51.100.20' });
 * const ea = a.attach(machineA);
 * b.attach(machineB);
 * net.runUntilTrue(() => ea.events.some((e) => e.type === 'state' && e.state === 'connected'), 30_000);
 * ```
 */
export class VirtualNetwork {
  readonly #random: SeededRandom;
  readonly #linkRandom: SeededRandom;
  readonly #public: Network;
  readonly #hosts: Host[] = [];
  readonly #nats: Nat[] = [];
  readonly #attachments: Attachment<unknown>[] = [];
  readonly #queue: QueuedPacket[] = [];
  readonly #trace: TraceEntry[] = [];
  readonly #traceOn: boolean;
  readonly #maxSteps: number;
  readonly #maxStepsPerInstant: number;
  readonly #recent: string[] = [];
  #now: number;
  #seq = 0;
  #packetIds = 0;
  #steps = 0;
  #callSteps = 0;
  #instantSteps = 0;
  #sent = 0;
  #delivered = 0;
  readonly #dropped: Partial<Record<DropReason, number>> = {};
  /** TCP connection ends by host and 5-tuple. */
  readonly #tcpEnds = new Map<string, TcpEnd>();
  #ephemeral = 49151;

  static {
    installHostNetworkHooks({
      transmit: (net, host, d) => net.#transmit(host, d),
      registerAttachment: (net, a, add) => {
        if (add) net.#attachments.push(a);
        else {
          const i = net.#attachments.indexOf(a);
          if (i >= 0) net.#attachments.splice(i, 1);
        }
      },
    });
  }

  /** Creates an empty network: the public network only, the clock at `startMs` (default 0). */
  constructor(options: VirtualNetworkOptions = {}) {
    this.#random = new SeededRandom(options.seed ?? 1);
    this.#linkRandom = this.#random.fork('links');
    this.#now = options.startMs ?? 0;
    this.#traceOn = options.trace ?? true;
    this.#maxSteps = options.maxSteps ?? 1_000_000;
    this.#maxStepsPerInstant = options.maxStepsPerInstant ?? 10_000;
    this.#public = new Network(
      'public',
      'public',
      mergeConditions(DEFAULT_PUBLIC_CONDITIONS, options.publicConditions),
      new AddressPool(options.publicPrefix ?? '203.0.113.0/24', 1n),
      undefined,
    );
  }

  /** Virtual time, ms. */
  get now(): number {
    return this.#now;
  }

  /**
   * The network's generator. Give each machine its own fork (`net.random.fork('alice')`) so that adding draws to one
   * machine never shifts another's sequence.
   */
  get random(): SeededRandom {
    return this.#random;
  }

  /** The public network (no gateway). */
  get public(): Network {
    return this.#public;
  }

  /** Every host, in creation order. */
  get hosts(): readonly Host[] {
    return this.#hosts;
  }

  /** Every NAT, in creation order. */
  get nats(): readonly Nat[] {
    return this.#nats;
  }

  /** Every recorded trace entry, in order (empty when tracing is off). */
  get trace(): readonly TraceEntry[] {
    return this.#trace;
  }

  /** Forgets the trace recorded so far. */
  clearTrace(): void {
    this.#trace.length = 0;
  }

  /** Counters since the start. */
  get stats(): NetworkStats {
    return { sent: this.#sent, delivered: this.#delivered, dropped: { ...this.#dropped }, steps: this.#steps };
  }

  /** Adds a host with one address (or the given ones) on `options.network` (default public). */
  addHost(options: HostOptions = {}): Host {
    const host = new Host(this, options.name ?? `host${this.#hosts.length + 1}`);
    const network = options.network ?? this.#public;
    const list = options.address === undefined ? [undefined] : typeof options.address === 'string' ? [options.address] : options.address;
    for (const ip of list) host.addAddress(network, ip);
    this.#hosts.push(host);
    return host;
  }

  /** Adds a NAT with its LAN. Its external address sits on `options.outside` (default public). */
  addNat(options: NatOptions = {}): Nat {
    const index = this.#nats.length + 1;
    const name = options.name ?? `nat${index}`;
    const outside = options.outside ?? this.#public;
    const lanPrefix = options.lanPrefix ?? `192.168.${index}.0/24`;
    const publicIp = reserveAddress(outside, options.publicIp);
    const translator = new NatTranslator(publicIp, options, this.#random.fork(`nat:${name}`));
    const tcpTranslator = new NatTranslator(publicIp, { ...options, blockUdp: false }, this.#random.fork(`nat:${name}:tcp`));
    const nat = new Nat(this, name, translator, outside, lanPrefix, mergeConditions(DEFAULT_LAN_CONDITIONS, options.lanConditions), tcpTranslator);
    networkNodes(outside).set(publicIp, natNodes(nat).outside);
    this.#nats.push(nat);
    return nat;
  }

  /** The host owning `ip` on any network (first match), if any. */
  findHost(ip: string): Host | undefined {
    const c = canonicalIp(ip);
    return this.#hosts.find((h) => h.ips.includes(c));
  }

  // ---- running ----

  /**
   * Takes one step: the earliest packet arrival, or else the earliest machine time-out (packets first on a tie,
   * then machines in attach order). Returns false when nothing is pending.
   */
  step(): boolean {
    this.#callSteps = 0;
    const n = this.#next();
    if (!n) return false;
    this.#take(n);
    return true;
  }

  /**
   * Steps until nothing is pending (no packet in flight, no machine deadline), however far that moves the clock: a
   * machine with a 10-minute timer takes the clock 10 minutes ahead (see `settle` to avoid that). Machines with
   * periodic timers never idle, so use `runUntil`/`runWhile` for them; the step bound turns a run that never idles
   * into `StepLimitError`. Returns the number of steps.
   */
  drive(maxSteps: number = this.#maxSteps): number {
    this.#callSteps = 0;
    for (;;) {
      const n = this.#next();
      if (!n) return this.#callSteps;
      this.#take(n, maxSteps);
    }
  }

  /**
   * Delivers every packet in flight and whatever they cause, taking machine time-outs only when they fall due before
   * the next packet (or now); stops as soon as no packet is in flight. Unlike `drive`, a long timer (a TURN allocation,
   * a keep-alive) does not pull the clock forward. The scripted-test workhorse: send, `settle()`, look. Returns steps.
   */
  settle(maxSteps: number = this.#maxSteps): number {
    this.#callSteps = 0;
    for (;;) {
      const n = this.#next();
      if (!n) break;
      if (!n.packet && n.time > this.#now && this.#queue.length === 0) break;
      this.#take(n, maxSteps);
    }
    return this.#callSteps;
  }

  /** Processes every event due at or before `timeMs`, then sets the clock to `timeMs`. Returns steps taken. */
  runUntil(timeMs: number): number {
    this.#callSteps = 0;
    for (;;) {
      const n = this.#next();
      if (!n || n.time > timeMs) break;
      this.#take(n);
    }
    this.#advance(timeMs);
    return this.#callSteps;
  }

  /** `runUntil(now + durationMs)`. */
  runFor(durationMs: number): number {
    return this.runUntil(this.#now + durationMs);
  }

  /**
   * Steps while `predicate()` holds, for at most `limitMs` of virtual time. Returns true when the predicate became
   * false (the clock stays at that event), false when the time limit was reached first (the clock is then at
   * `now + limitMs`). The predicate is checked before each step.
   */
  runWhile(predicate: () => boolean, limitMs: number): boolean {
    this.#callSteps = 0;
    const deadline = this.#now + limitMs;
    for (;;) {
      this.#sync();
      if (!predicate()) return true;
      const n = this.#next();
      if (!n || n.time > deadline) {
        this.#advance(deadline);
        this.#sync();
        return !predicate();
      }
      this.#take(n);
    }
  }

  /** Steps until `predicate()` holds, for at most `limitMs`: `runWhile(() => !predicate(), limitMs)`. */
  runUntilTrue(predicate: () => boolean, limitMs: number): boolean {
    return this.runWhile(() => !predicate(), limitMs);
  }

  /** Time of the next pending event (after draining machines), or undefined when idle. */
  nextEventTime(): number | undefined {
    return this.#next()?.time;
  }

  // ---- internals ----

  // Drains every attached machine until none has output (callbacks may poke other machines).
  #sync(): void {
    for (let round = 0; ; round++) {
      let any = false;
      for (const a of [...this.#attachments]) if (this.#drain(a)) any = true;
      if (!any) return;
      if (round >= 1000) throw new StepLimitError('drain', round, this.#now, this.#recent);
    }
  }

  #drain(a: Attachment<unknown>): boolean {
    let any = false;
    for (;;) {
      const d = a.machine.pollTransmit();
      if (!d) break;
      any = true;
      if (a.attached) this.#transmit(a.host, d);
    }
    for (;;) {
      const e = a.machine.pollEvent();
      if (e === undefined) break;
      any = true;
      attachmentPush(a, e);
      if (a.attached && isTcpMachine(a.machine)) this.#tcpEvent(a, e);
    }
    return any;
  }

  #next(): Next | undefined {
    this.#sync();
    const top = this.#queue[0];
    let best: Attachment<unknown> | undefined;
    let bestTime = Infinity;
    for (const a of this.#attachments) {
      const t = a.machine.pollTimeout();
      if (t !== undefined && t < bestTime) {
        bestTime = t;
        best = a;
      }
    }
    if (top && top.time <= bestTime) return { time: top.time, packet: top };
    if (best) return { time: Math.max(bestTime, this.#now), attachment: best };
    return undefined;
  }

  #take(n: Next, maxSteps: number = this.#maxSteps): void {
    this.#advance(n.time);
    this.#steps++;
    this.#callSteps++;
    this.#instantSteps++;
    if (n.packet) {
      heapPop(this.#queue);
      this.#note(`t=${this.#now} packet #${n.packet.packet.id} ${formatAddress(n.packet.packet.src)} -> ${formatAddress(n.packet.packet.dst)}`);
      this.#arrive(n.packet);
    } else if (n.attachment) {
      this.#note(`t=${this.#now} timeout ${n.attachment.name}`);
      n.attachment.machine.handleTimeout(this.#now);
      this.#drain(n.attachment);
    }
    if (this.#callSteps > maxSteps) throw new StepLimitError('total', this.#callSteps, this.#now, this.#recent);
    if (this.#instantSteps > this.#maxStepsPerInstant) {
      throw new StepLimitError('instant', this.#instantSteps, this.#now, this.#recent);
    }
  }

  #note(line: string): void {
    this.#recent.push(line);
    if (this.#recent.length > 20) this.#recent.shift();
  }

  #advance(t: number): void {
    if (t > this.#now) {
      this.#now = t;
      this.#instantSteps = 0;
    }
  }

  #record(entry: Omit<TraceEntry, 'time' | 'size'>): void {
    if (entry.kind === 'drop') {
      const r = entry.reason!;
      this.#dropped[r] = (this.#dropped[r] ?? 0) + 1;
    }
    if (this.#traceOn) this.#trace.push({ time: this.#now, size: entry.data.length, ...entry });
  }

  #drop(p: Packet, node: string, reason: DropReason, network?: Network): void {
    this.#record({ kind: 'drop', packet: p.id, node, from: p.src, to: p.dst, reason, data: p.data, ...(network ? { network: network.name } : {}) });
  }

  // A datagram leaving a host (from a machine or `Host.send`).
  #transmit(host: Host, d: Datagram): void {
    const local = { address: canonicalIp(d.local.address), port: d.local.port };
    const remote = { address: canonicalIp(d.remote.address), port: d.remote.port };
    const p: Packet = { id: ++this.#packetIds, src: local, dst: remote, data: d.data, hops: 0 };
    this.#sent++;
    if (d.transport === 'tcp') {
      const end = this.#tcpEnds.get(tcpKey(host, local, remote));
      if (end === undefined || end.state !== 'open') return this.#drop(p, host.name, 'unsupported-transport');
      return this.#sendTcp(host, local, remote, 'data', d.data, p.id);
    }
    if (d.transport !== undefined && d.transport !== 'udp') return this.#drop(p, host.name, 'unsupported-transport');
    const entry = host.addresses.find((a) => a.ip === local.address);
    if (!entry || !validPort(local.port)) return this.#drop(p, host.name, 'bad-source');
    this.#record({ kind: 'send', packet: p.id, node: host.name, from: local, to: remote, data: p.data, network: entry.network.name });
    if (!host.online) return this.#drop(p, host.name, 'host-down');
    this.#emit(p, entry.network, hostNode(host), host.name);
  }

  // Puts a packet on `network` from node `from`: routing, MTU, loss, delay.
  #emit(p: Packet, network: Network, from: NodeRef, fromName: string): void {
    const c = network.conditions;
    if (p.hops >= MAX_HOPS) return this.#drop(p, fromName, 'ttl', network);
    if (p.tcp === undefined && p.data.length > c.mtu) return this.#drop(p, fromName, 'mtu', network);
    if (!validPort(p.dst.port) || ipFamily(p.dst.address) === 0) return this.#drop(p, fromName, 'no-route', network);
    if (isMulticast(p.dst.address)) {
      // Link-local multicast (mDNS): one copy to every other host on this network with an address of that family.
      const fam = ipFamily(p.dst.address);
      const seen = new Set<Host>();
      for (const [ip, node] of networkNodes(network)) {
        if (node.kind !== 'host' || node === from || seen.has(node.host) || ipFamily(ip) !== fam) continue;
        seen.add(node.host);
        this.#schedule(p, network, node, fromName, false);
      }
      return;
    }
    const nodes = networkNodes(network);
    let target = nodes.get(p.dst.address);
    if (!target && network.gateway) target = natNodes(network.gateway).inside;
    if (!target || (target === from && target.kind !== 'host')) return this.#drop(p, fromName, 'no-route', network);
    // A host talking to itself goes through its loopback: no delay, no loss.
    this.#schedule(p, network, target, fromName, target === from);
  }

  #schedule(p: Packet, network: Network, target: NodeRef, fromName: string, loopback: boolean): void {
    const rnd = this.#linkRandom;
    const c = network.conditions;
    if (p.tcp !== undefined) {
      // TCP: reliable and in order (retransmission is TCP's business): the base delay only, one copy.
      const time = Math.round((this.#now + (loopback ? 0 : c.delayMs)) * 1000) / 1000;
      return heapPush(this.#queue, { time, seq: this.#seq++, packet: p, target });
    }
    if (!loopback && c.loss > 0 && rnd.chance(c.loss)) return this.#drop(p, fromName, 'loss', network);
    const copies = !loopback && c.duplicate > 0 && rnd.chance(c.duplicate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const packet = i === 0 ? p : { ...p, id: ++this.#packetIds };
      let delay = loopback ? 0 : c.delayMs;
      if (!loopback && c.jitterMs > 0) delay += rnd.float() * c.jitterMs;
      if (!loopback && c.reorder > 0 && rnd.chance(c.reorder)) delay += c.reorderDelayMs;
      // Rounded to a microsecond so traces stay readable and sums exact enough to compare.
      const time = Math.round((this.#now + delay) * 1000) / 1000;
      heapPush(this.#queue, { time, seq: this.#seq++, packet, target });
    }
  }

  #arrive(q: QueuedPacket): void {
    const p = q.packet;
    const node = q.target;
    if (node.kind === 'host') return this.#deliver(p, node.host);
    const nat = node.nat;
    const tr = p.tcp !== undefined ? nat.tcpTranslator : nat.translator;
    if (node.kind === 'nat-outside') {
      const r = tr.inbound(this.#now, p.src, p.dst);
      if (!r.ok) return this.#drop(p, nat.name, r.reason);
      const next: Packet = { ...p, dst: r.address, hops: p.hops + 1 };
      this.#record({ kind: 'nat', direction: 'inbound', packet: p.id, node: nat.name, from: next.src, to: next.dst, before: { from: p.src, to: p.dst }, data: p.data, network: nat.lan.name });
      return this.#emit(next, nat.lan, natNodes(nat).inside, nat.name);
    }
    // From the LAN side.
    if (p.dst.address === nat.insideIp) return this.#drop(p, nat.name, 'unclaimed');
    const out = tr.outbound(this.#now, p.src, p.dst);
    if (!out.ok) return this.#drop(p, nat.name, out.reason);
    const translated: Packet = { ...p, src: out.address, hops: p.hops + 1 };
    if (p.dst.address !== nat.publicIp) {
      this.#record({ kind: 'nat', direction: 'outbound', packet: p.id, node: nat.name, from: translated.src, to: translated.dst, before: { from: p.src, to: p.dst }, data: p.data, network: nat.outside.name });
      return this.#emit(translated, nat.outside, natNodes(nat).outside, nat.name);
    }
    // RFC 4787 §6: hairpinning, with the external source address (REQ-9a); the filter applies as for any inbound.
    if (!tr.behavior.hairpinning) return this.#drop(translated, nat.name, 'nat-hairpin-disabled');
    const back = tr.inbound(this.#now, translated.src, p.dst);
    if (!back.ok) return this.#drop(translated, nat.name, back.reason);
    const hairpinned: Packet = { ...translated, dst: back.address };
    this.#record({ kind: 'nat', direction: 'hairpin', packet: p.id, node: nat.name, from: hairpinned.src, to: hairpinned.dst, before: { from: p.src, to: p.dst }, data: p.data, network: nat.lan.name });
    return this.#emit(hairpinned, nat.lan, natNodes(nat).inside, nat.name);
  }

  #deliver(p: Packet, host: Host): void {
    if (!host.online) return this.#drop(p, host.name, 'host-down');
    if (p.tcp !== undefined) return this.#deliverTcp(p, host);
    const datagram: Datagram = { local: p.dst, remote: p.src, data: p.data };
    for (const a of [...hostAttachments(host)]) {
      if (!a.machine.handleReceive(this.#now, datagram)) continue;
      this.#delivered++;
      this.#record({ kind: 'deliver', packet: p.id, node: host.name, machine: a.name, from: p.src, to: p.dst, data: p.data });
      this.#drain(a);
      return;
    }
    this.#drop(p, host.name, 'unclaimed');
  }

  // ---- TCP (RFC 6544 connections of machines that implement `TcpMachine`) ----

  /** A machine's `tcp-connect` / `tcp-close`. */
  #tcpEvent(a: Attachment<unknown>, e: unknown): void {
    const ev = e as { type?: string; id?: string; local?: TransportAddress; remote?: TransportAddress };
    if (ev.type === 'tcp-connect' && ev.id !== undefined && ev.local && ev.remote) {
      const host = a.host;
      const ip = canonicalIp(ev.local.address);
      const remote = { address: canonicalIp(ev.remote.address), port: ev.remote.port };
      let port = ev.local.port;
      if (port === 0) {
        do port = this.#ephemeral = this.#ephemeral >= 65535 ? 49152 : this.#ephemeral + 1;
        while (this.#tcpEnds.has(tcpKey(host, { address: ip, port }, remote)));
      }
      const local = { address: ip, port };
      const end: TcpEnd = { host, attachment: a, id: ev.id, local, remote, state: 'connecting' };
      this.#tcpEnds.set(tcpKey(host, local, remote), end);
      this.#sendTcp(host, local, remote, 'syn', EMPTY);
    } else if (ev.type === 'tcp-close' && ev.id !== undefined) {
      for (const [k, end] of this.#tcpEnds) {
        if (end.attachment !== a || end.id !== ev.id) continue;
        this.#tcpEnds.delete(k);
        this.#sendTcp(end.host, end.local, end.remote, 'rst', EMPTY);
      }
    }
  }

  /** Sends a TCP segment from a host (through its network, NATs included). */
  #sendTcp(host: Host, local: TransportAddress, remote: TransportAddress, seg: TcpSegment, data: Uint8Array, id?: number): void {
    const p: Packet = { id: id ?? ++this.#packetIds, src: local, dst: remote, data, hops: 0, tcp: seg };
    const entry = host.addresses.find((x) => x.ip === local.address);
    if (!entry) return this.#drop(p, host.name, 'bad-source');
    this.#record({ kind: 'send', packet: p.id, node: host.name, from: local, to: remote, data, network: entry.network.name });
    if (!host.online) return this.#drop(p, host.name, 'host-down');
    this.#emit(p, entry.network, hostNode(host), host.name);
  }

  /** Resets every TCP connection of `host` (both ends see it closed): a crashed stack, a cut cable. */
  resetTcp(host: Host): number {
    let n = 0;
    for (const [k, end] of [...this.#tcpEnds]) {
      if (end.host !== host) continue;
      this.#tcpEnds.delete(k);
      this.#sendTcp(host, end.local, end.remote, 'rst', EMPTY);
      this.#tcpNotify(end, 'closed');
      n++;
    }
    this.#sync();
    return n;
  }

  /** Open TCP connection ends (both sides count), for tests. */
  get tcpConnections(): number {
    let n = 0;
    for (const e of this.#tcpEnds.values()) if (e.state === 'open') n++;
    return n;
  }

  #tcpNotify(end: TcpEnd, what: 'failed' | 'closed'): void {
    const m = end.attachment.machine as unknown as TcpMachine;
    if (!end.attachment.attached) return;
    if (end.state === 'connecting' && what === 'failed') m.tcpConnectFailed(this.#now, end.id);
    else m.tcpClosed(this.#now, end.id);
    this.#drain(end.attachment);
  }

  #deliverTcp(p: Packet, host: Host): void {
    const key = tcpKey(host, p.dst, p.src);
    const end = this.#tcpEnds.get(key);
    switch (p.tcp) {
      case 'syn': {
        if (end !== undefined && end.state === 'connecting') {
          // Simultaneous open (RFC 793 §3.4): both SYNs crossed; one connection, each side sees its attempt succeed.
          end.state = 'open';
          this.#delivered++;
          const m = end.attachment.machine as unknown as TcpMachine;
          const wanted = end.attachment.attached && m.tcpConnected(this.#now, end.id, end.local);
          this.#drain(end.attachment);
          if (!wanted) {
            this.#tcpEnds.delete(key);
            return this.#sendTcp(host, end.local, end.remote, 'rst', EMPTY);
          }
          return this.#sendTcp(host, end.local, end.remote, 'syn-ack', EMPTY);
        }
        if (end !== undefined) return this.#drop(p, host.name, 'unclaimed');
        for (const a of [...hostAttachments(host)]) {
          if (!isTcpMachine(a.machine)) continue;
          const id = a.machine.tcpAccepted(this.#now, p.dst, p.src);
          this.#drain(a);
          if (id === undefined) continue;
          this.#tcpEnds.set(key, { host, attachment: a, id, local: p.dst, remote: p.src, state: 'open' });
          this.#delivered++;
          this.#record({ kind: 'deliver', packet: p.id, node: host.name, machine: a.name, from: p.src, to: p.dst, data: p.data });
          return this.#sendTcp(host, p.dst, p.src, 'syn-ack', EMPTY);
        }
        this.#drop(p, host.name, 'tcp-refused');
        return this.#sendTcp(host, p.dst, p.src, 'rst', EMPTY);
      }
      case 'syn-ack': {
        if (end !== undefined && end.state === 'open') return; // the other half of a simultaneous open
        if (end === undefined || end.state !== 'connecting') return this.#sendTcp(host, p.dst, p.src, 'rst', EMPTY);
        end.state = 'open';
        this.#delivered++;
        const m = end.attachment.machine as unknown as TcpMachine;
        const wanted = end.attachment.attached && m.tcpConnected(this.#now, end.id, end.local);
        this.#drain(end.attachment);
        if (!wanted) {
          this.#tcpEnds.delete(key);
          this.#sendTcp(host, end.local, end.remote, 'rst', EMPTY);
        }
        return;
      }
      case 'data': {
        if (end === undefined || end.state !== 'open' || !end.attachment.attached) {
          this.#drop(p, host.name, 'unclaimed');
          return this.#sendTcp(host, p.dst, p.src, 'rst', EMPTY);
        }
        end.attachment.machine.handleReceive(this.#now, { local: p.dst, remote: p.src, data: p.data, transport: 'tcp' });
        this.#delivered++;
        this.#record({ kind: 'deliver', packet: p.id, node: host.name, machine: end.attachment.name, from: p.src, to: p.dst, data: p.data });
        this.#drain(end.attachment);
        return;
      }
      case 'rst': {
        if (end === undefined) return;
        this.#tcpEnds.delete(key);
        this.#tcpNotify(end, 'failed');
        return;
      }
    }
  }

}
