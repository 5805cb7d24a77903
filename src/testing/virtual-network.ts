/**
 * A deterministic discrete-event network for running whole NAT topologies in virtual time (pion's vnet, run on a
 * virtual clock; the stepping follows quinn-proto's `Pair::step`/`drive_bounded` and str0m's `progress`).
 *
 * - A `VirtualNetwork` owns the clock, a seeded generator, one public network and the event queue.
 * - `Network`s carry link conditions (delay, jitter, loss, reordering, duplication, MTU) applied on every hop.
 * - `Host`s own IP addresses on networks; sans-IO machines (`SansIoMachine`) are attached to hosts, receive every
 *   datagram addressed to any port of the host's addresses, and send what they `pollTransmit` (the `local` address
 *   must be one of the host's, else the datagram is dropped as `'bad-source'`).
 * - `Nat`s join a private LAN to an outside network with RFC 4787 behaviour (`nat.ts`). NATs nest (a NAT's outside
 *   may be another NAT's LAN).
 *
 * Every run method advances to the earliest pending event (a packet arrival or any machine's `pollTimeout`), so a
 * minute of virtual time costs only the events in it. Step bounds make livelocks fail loudly with
 * `StepLimitError`. Same seed and same calls give the same run, event for event.
 * @module
 */
import { IcewireError } from '../errors.js';
import { canonicalIp, ipFamily, parseIp } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import { formatAddress, type Datagram, type TransportAddress } from '../types.js';
import { NatTranslator, type NatBehaviorOptions, type NatMappingInfo } from './nat.js';
import {
  AddressPool,
  DEFAULT_LAN_CONDITIONS,
  DEFAULT_PUBLIC_CONDITIONS,
  Network,
  mergeConditions,
  networkNodes,
  networkPool,
  type LinkConditions,
  type NodeRef,
} from './network.js';
import { SeededRandom, type Seed } from './random.js';
import type { DropReason, TraceEntry } from './trace.js';

// Moved to network.ts and trace.ts; re-exported so `icewire/testing` and this module keep their exports.
export { DEFAULT_LAN_CONDITIONS, DEFAULT_PUBLIC_CONDITIONS, Network, type LinkConditions } from './network.js';
export { formatTrace, formatTraceEntry, type DropReason, type TraceEntry } from './trace.js';

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

/** Options of `addHost`. */
export interface HostOptions {
  /** Name in traces. Default `host<N>`. */
  readonly name?: string;
  /** Network of the addresses given here (default the public network). More can be added with `addAddress`. */
  readonly network?: Network;
  /** IP address(es) on `network`; default one drawn from the network's prefix. */
  readonly address?: string | readonly string[];
}

/** Options of `addNat`. */
export interface NatOptions extends NatBehaviorOptions {
  /** Name in traces. Default `nat<N>`. */
  readonly name?: string;
  /** The network the NAT's external side sits on (default the public network; another NAT's LAN nests NATs). */
  readonly outside?: Network;
  /** External address on `outside`; default one drawn from that network's prefix. */
  readonly publicIp?: string;
  /** Inside prefix; the NAT takes the first address, hosts get the following ones. Default 192.168.<N>.0/24. */
  readonly lanPrefix?: string;
  /** Conditions of the LAN (merged over `DEFAULT_LAN_CONDITIONS`). */
  readonly lanConditions?: Partial<LinkConditions>;
}

/** Options of `Host.attach`. */
export interface AttachOptions<Event> {
  /** Name in traces and errors. Default `<host>#<N>`. */
  readonly name?: string;
  /**
   * Called for each event as it is drained, after it is appended to `events`. It may call commands on any machine:
   * their output is drained before the next step.
   */
  readonly onEvent?: (event: Event, attachment: Attachment<Event>) => void;
}

// ---- internals ----------------------------------------------------------------------------------------------

interface Packet {
  readonly id: number;
  readonly src: TransportAddress;
  readonly dst: TransportAddress;
  readonly data: Uint8Array;
  readonly hops: number;
}

interface QueuedPacket {
  readonly time: number;
  readonly seq: number;
  readonly packet: Packet;
  readonly target: NodeRef;
}

interface Next {
  readonly time: number;
  readonly packet?: QueuedPacket;
  readonly attachment?: Attachment<unknown>;
}

const MAX_HOPS = 16;

function isMulticast(ip: string): boolean {
  const b = parseIp(ip);
  if (!b) return false;
  return b.length === 4 ? (b[0]! & 0xf0) === 0xe0 : b[0] === 0xff;
}

function validPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}

// Friend accessors: set in static blocks so that the exported classes keep their state in #private fields.
let hostNode: (h: Host) => NodeRef;
let hostAttachments: (h: Host) => Attachment<unknown>[];
let natNodes: (n: Nat) => { readonly inside: NodeRef; readonly outside: NodeRef };
let attachmentPush: (a: Attachment<unknown>, event: unknown) => void;
let netTransmit: (net: VirtualNetwork, host: Host, datagram: Datagram) => void;
let netRegisterAttachment: (net: VirtualNetwork, a: Attachment<unknown>, add: boolean) => void;
let netAddAddress: (net: VirtualNetwork, host: Host, network: Network, ip: string | undefined) => string;

// ---- exported classes ---------------------------------------------------------------------------------------

/**
 * A machine attached to a host, with the events it has produced. Created by `Host.attach`.
 * @typeParam Event - the machine's event type.
 */
export class Attachment<Event> {
  readonly #machine: SansIoMachine<Event>;
  readonly #host: Host;
  readonly #name: string;
  readonly #events: Event[] = [];
  readonly #onEvent: ((event: Event, attachment: Attachment<Event>) => void) | undefined;
  #attached = true;

  /** @internal Use `Host.attach`. */
  constructor(machine: SansIoMachine<Event>, host: Host, name: string, onEvent: AttachOptions<Event>['onEvent']) {
    this.#machine = machine;
    this.#host = host;
    this.#name = name;
    this.#onEvent = onEvent;
  }

  /** The attached machine. */
  get machine(): SansIoMachine<Event> {
    return this.#machine;
  }

  /** The host the machine is attached to. */
  get host(): Host {
    return this.#host;
  }

  /** Name in traces (`TraceEntry.machine`) and step-limit diagnostics. */
  get name(): string {
    return this.#name;
  }

  /** Every event drained from the machine so far, oldest first (see also `takeEvents`). */
  get events(): readonly Event[] {
    return this.#events;
  }

  /** False after `detach`. */
  get attached(): boolean {
    return this.#attached;
  }

  /** Returns the collected events and empties the list. */
  takeEvents(): Event[] {
    return this.#events.splice(0, this.#events.length);
  }

  /** Stops delivering to and draining this machine (a crashed process). */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    const list = hostAttachments(this.#host);
    const i = list.indexOf(this as Attachment<unknown>);
    if (i >= 0) list.splice(i, 1);
    netRegisterAttachment(this.#host.network, this as Attachment<unknown>, false);
  }

  static {
    attachmentPush = (a, e) => {
      a.#events.push(e);
      a.#onEvent?.(e, a);
    };
  }
}

/** A host: one or more IP addresses, each on a network, and the machines attached to it. */
export class Host {
  readonly #net: VirtualNetwork;
  readonly #name: string;
  readonly #node: NodeRef;
  readonly #addresses: { readonly ip: string; readonly network: Network }[] = [];
  readonly #attachments: Attachment<unknown>[] = [];
  #online = true;
  #attachCount = 0;

  static {
    hostNode = (h) => h.#node;
    hostAttachments = (h) => h.#attachments;
  }

  /** @internal Use `VirtualNetwork.addHost`. */
  constructor(net: VirtualNetwork, name: string) {
    this.#net = net;
    this.#name = name;
    this.#node = { kind: 'host', host: this };
  }

  /** Name in traces. */
  get name(): string {
    return this.#name;
  }

  /** The virtual network this host belongs to. */
  get network(): VirtualNetwork {
    return this.#net;
  }

  /** Every address with its network, in the order added. */
  get addresses(): readonly { readonly ip: string; readonly network: Network }[] {
    return this.#addresses;
  }

  /** The IP addresses (canonical text), in the order added. */
  get ips(): readonly string[] {
    return this.#addresses.map((a) => a.ip);
  }

  /** The first address, with `port`: a convenient base for a machine with one socket. */
  address(port: number): TransportAddress {
    const first = this.#addresses[0];
    if (!first) throw new RangeError(`host ${this.#name} has no address`);
    return { address: first.ip, port };
  }

  /** The attached machines, in attach order (a datagram is offered to them in this order). */
  get attachments(): readonly Attachment<unknown>[] {
    return this.#attachments;
  }

  /** An offline host neither sends nor receives (drops as `'host-down'`); its machines' timers still run. */
  get online(): boolean {
    return this.#online;
  }

  set online(value: boolean) {
    this.#online = value;
  }

  /** Adds an address on `network` (drawn from its prefix when omitted) and returns it. Throws when taken. */
  addAddress(network: Network, ip?: string): string {
    const added = netAddAddress(this.#net, this, network, ip);
    this.#addresses.push({ ip: added, network });
    return added;
  }

  /**
   * Removes an address (an interface going away, a handover): datagrams to it no longer route, and machines sending
   * from it get `'bad-source'`. Returns false when the host does not have it.
   */
  removeAddress(ip: string): boolean {
    const c = canonicalIp(ip);
    const i = this.#addresses.findIndex((a) => a.ip === c);
    if (i < 0) return false;
    const [{ network }] = this.#addresses.splice(i, 1) as [{ readonly ip: string; readonly network: Network }];
    const nodes = networkNodes(network);
    if (nodes.get(c) === this.#node) nodes.delete(c);
    return true;
  }

  /**
   * Attaches a sans-IO machine. From now on it is offered every datagram addressed to this host (after the machines
   * attached before it declined), its `pollTimeout` is honoured, and its transmits and events are drained after
   * every input. Output it already has queued is drained at the next step.
   */
  attach<Event>(machine: SansIoMachine<Event>, options: AttachOptions<Event> = {}): Attachment<Event> {
    const a = new Attachment<Event>(machine, this, options.name ?? `${this.#name}#${++this.#attachCount}`, options.onEvent);
    this.#attachments.push(a as Attachment<unknown>);
    netRegisterAttachment(this.#net, a as Attachment<unknown>, true);
    return a;
  }

  /** Sends one datagram from this host now, as if a machine had transmitted it (for scripted tests). */
  send(local: TransportAddress, remote: TransportAddress, data: Uint8Array): void {
    netTransmit(this.#net, this, { local, remote, data });
  }
}

/** A NAT joining a LAN (`lan`) to an outside network through one external address. Create with `addNat`. */
export class Nat {
  readonly #name: string;
  readonly #translator: NatTranslator;
  readonly #outside: Network;
  readonly #lan: Network;
  readonly #insideIp: string;
  readonly #nodes: { readonly inside: NodeRef; readonly outside: NodeRef };
  readonly #net: VirtualNetwork;

  static {
    natNodes = (n) => n.#nodes;
  }

  /** @internal Use `VirtualNetwork.addNat`. */
  constructor(
    net: VirtualNetwork,
    name: string,
    translator: NatTranslator,
    outside: Network,
    lanPrefix: string,
    lanConditions: LinkConditions,
  ) {
    this.#net = net;
    this.#name = name;
    this.#translator = translator;
    this.#outside = outside;
    const pool = new AddressPool(lanPrefix, 1n);
    this.#insideIp = pool.take(() => true);
    this.#lan = new Network(`${name}.lan`, 'lan', lanConditions, pool, this);
    this.#nodes = { inside: { kind: 'nat-inside', nat: this }, outside: { kind: 'nat-outside', nat: this } };
    networkNodes(this.#lan).set(this.#insideIp, this.#nodes.inside);
  }

  /** Name in traces. */
  get name(): string {
    return this.#name;
  }

  /** The external address (on `outside`). */
  get publicIp(): string {
    return this.#translator.publicIp;
  }

  /** The NAT's own address on its LAN (the gateway). */
  get insideIp(): string {
    return this.#insideIp;
  }

  /** The private network behind this NAT: pass it to `addHost({ network })`. */
  get lan(): Network {
    return this.#lan;
  }

  /** The network the external side is on. */
  get outside(): Network {
    return this.#outside;
  }

  /** The translation table (behaviour and live mappings). */
  get translator(): NatTranslator {
    return this.#translator;
  }

  /** The live mappings now. */
  mappings(): NatMappingInfo[] {
    return this.#translator.mappings(this.#net.now);
  }
}

/**
 * The simulator: clock, seeded generator, networks, hosts, NATs and the event queue. See the module docs.
 *
 * @example
 * ```ts
 * const net = new VirtualNetwork({ seed: 7 });
 * const natA = net.addNat({ ...NatPresets.symmetric, publicIp: '203.0.113.10' });
 * const a = net.addHost({ name: 'a', network: natA.lan }); // 192.168.1.2
 * const b = net.addHost({ name: 'b', address: '198.51.100.20' });
 * const ea = a.attach(machineA);
 * net.runUntilTrue(() => ea.events.some((e) => e.type === 'connected'), 30_000);
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

  static {
    netTransmit = (net, host, d) => net.#transmit(host, d);
    netRegisterAttachment = (net, a, add) => {
      if (add) net.#attachments.push(a);
      else {
        const i = net.#attachments.indexOf(a);
        if (i >= 0) net.#attachments.splice(i, 1);
      }
    };
    netAddAddress = (net, host, network, ip) => net.#addAddress(hostNode(host), network, ip);
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
    const publicIp = this.#reserve(outside, options.publicIp);
    const translator = new NatTranslator(publicIp, options, this.#random.fork(`nat:${name}`));
    const nat = new Nat(this, name, translator, outside, lanPrefix, mergeConditions(DEFAULT_LAN_CONDITIONS, options.lanConditions));
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

  #reserve(network: Network, ip: string | undefined): string {
    const nodes = networkNodes(network);
    let chosen: string;
    if (ip === undefined) {
      const pool = networkPool(network);
      if (!pool) throw new RangeError(`network ${network.name} has no prefix to draw addresses from`);
      chosen = pool.take((c) => !nodes.has(c));
    } else {
      if (ipFamily(ip) === 0) throw new RangeError(`not an IP address: ${ip}`);
      if (isMulticast(ip)) throw new RangeError(`multicast address cannot be assigned: ${ip}`);
      chosen = canonicalIp(ip);
    }
    if (nodes.has(chosen)) throw new RangeError(`address ${chosen} already in use on ${network.name}`);
    return chosen;
  }

  #addAddress(node: NodeRef, network: Network, ip: string | undefined): string {
    const chosen = this.#reserve(network, ip);
    networkNodes(network).set(chosen, node);
    return chosen;
  }

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
    if (p.data.length > c.mtu) return this.#drop(p, fromName, 'mtu', network);
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
    const tr = nat.translator;
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
}

// ---- a binary min-heap on (time, seq) ---------------------------------------------------------------------

function before(a: QueuedPacket, b: QueuedPacket): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

function heapPush(h: QueuedPacket[], item: QueuedPacket): void {
  h.push(item);
  let i = h.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(h[i]!, h[parent]!)) break;
    [h[i], h[parent]] = [h[parent]!, h[i]!];
    i = parent;
  }
}

function heapPop(h: QueuedPacket[]): QueuedPacket | undefined {
  const top = h[0];
  const last = h.pop();
  if (h.length > 0 && last) {
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
  return top;
}
