/**
 * Hosts of the virtual network: `Host` (IP addresses on networks, online or not) and `Attachment` (a sans-IO
 * machine attached to a host, with the events drained from it). Routing and the run loop stay in
 * `virtual-network.ts`, which reaches the private parts here through the `@internal` functions at the end.
 * @module
 */
import { canonicalIp } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram, TransportAddress } from '../types.js';
import { networkNodes, reserveAddress, type Network, type NodeRef } from './network.js';
import type { VirtualNetwork } from './virtual-network.js';

/** Options of `addHost`. */
export interface HostOptions {
  /** Name in traces. Default `host<N>`. */
  readonly name?: string;
  /** Network of the addresses given here (default the public network). More can be added with `addAddress`. */
  readonly network?: Network;
  /** IP address(es) on `network`; default one drawn from the network's prefix. */
  readonly address?: string | readonly string[];
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

/**
 * @internal What hosts need from their `VirtualNetwork`. `virtual-network.ts` installs it when it loads: it cannot
 * be imported from here without a load-order cycle (the network creates hosts).
 */
export interface HostNetworkHooks {
  /** A datagram leaving `host`, routed from now. */
  readonly transmit: (net: VirtualNetwork, host: Host, datagram: Datagram) => void;
  /** Adds or removes an attachment from the machines the network drains and wakes. */
  readonly registerAttachment: (net: VirtualNetwork, a: Attachment<unknown>, add: boolean) => void;
}

let hooks: HostNetworkHooks;

/** @internal Called once by `virtual-network.ts`. */
export function installHostNetworkHooks(h: HostNetworkHooks): void {
  hooks = h;
}

// Friend accessors: set in static blocks so that the exported classes keep their state in #private fields.
let nodeOf: (h: Host) => NodeRef;
let attachmentsOf: (h: Host) => Attachment<unknown>[];
let pushEvent: (a: Attachment<unknown>, event: unknown) => void;

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
    const list = attachmentsOf(this.#host);
    const i = list.indexOf(this as Attachment<unknown>);
    if (i >= 0) list.splice(i, 1);
    hooks.registerAttachment(this.#host.network, this as Attachment<unknown>, false);
  }

  static {
    pushEvent = (a, e) => {
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
    nodeOf = (h) => h.#node;
    attachmentsOf = (h) => h.#attachments;
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
    const added = reserveAddress(network, ip);
    networkNodes(network).set(added, this.#node);
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
    hooks.registerAttachment(this.#net, a as Attachment<unknown>, true);
    return a;
  }

  /** Sends one datagram from this host now, as if a machine had transmitted it (for scripted tests). */
  send(local: TransportAddress, remote: TransportAddress, data: Uint8Array): void {
    hooks.transmit(this.#net, this, { local, remote, data });
  }
}

/** @internal The node a host's addresses lead to in its networks' address tables. */
export function hostNode(host: Host): NodeRef {
  return nodeOf(host);
}

/** @internal The live list of a host's attachments (the order datagrams are offered in). */
export function hostAttachments(host: Host): Attachment<unknown>[] {
  return attachmentsOf(host);
}

/** @internal Records an event drained from the attachment's machine and calls its `onEvent`. */
export function attachmentPush(a: Attachment<unknown>, event: unknown): void {
  pushEvent(a, event);
}
