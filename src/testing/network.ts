/**
 * The segments of a virtual network: link conditions (delay, jitter, loss, reordering, duplication, MTU) applied on
 * every hop, the `Network` a host or NAT side sits on, and the pool its addresses are drawn from (or checked against).
 * Routing and the event queue stay in `virtual-network.ts`.
 * @module
 */
import { canonicalIp, formatIp, ipFamily, parseIp } from '../ip.js';
import type { Host } from './host.js';
import type { Nat } from './nat-node.js';

/** Conditions of one network, applied to each packet on each hop across it. */
export interface LinkConditions {
  /** Base one-way delay in ms. */
  readonly delayMs: number;
  /** Extra delay drawn uniformly from [0, jitterMs). Jitter alone can reorder packets. */
  readonly jitterMs: number;
  /** Probability in [0, 1] that a packet is lost. */
  readonly loss: number;
  /** Probability in [0, 1] that a packet is held back an extra `reorderDelayMs` (so later ones overtake it). */
  readonly reorder: number;
  /** Extra delay of a reordered packet, ms. */
  readonly reorderDelayMs: number;
  /** Probability in [0, 1] that a packet is delivered twice (the copy takes its own delay). */
  readonly duplicate: number;
  /** Largest UDP payload in bytes; bigger packets are dropped as `'mtu'`. */
  readonly mtu: number;
}

/** Defaults for the public network: 10 ms one way, nothing else. */
export const DEFAULT_PUBLIC_CONDITIONS: LinkConditions = {
  delayMs: 10,
  jitterMs: 0,
  loss: 0,
  reorder: 0,
  reorderDelayMs: 20,
  duplicate: 0,
  mtu: 65_507,
};

/** Defaults for a NAT's LAN: 1 ms one way, nothing else. */
export const DEFAULT_LAN_CONDITIONS: LinkConditions = { ...DEFAULT_PUBLIC_CONDITIONS, delayMs: 1, reorderDelayMs: 2 };

/** What an address on a network leads to: a host, or one side of a NAT. */
export type NodeRef =
  | { readonly kind: 'host'; readonly host: Host }
  | { readonly kind: 'nat-inside'; readonly nat: Nat }
  | { readonly kind: 'nat-outside'; readonly nat: Nat };

/** `over` applied to `base`, validated (probabilities in [0, 1], delays and MTU non-negative). */
export function mergeConditions(base: LinkConditions, over: Partial<LinkConditions> | undefined): LinkConditions {
  const c = { ...base, ...over };
  for (const k of ['loss', 'reorder', 'duplicate'] as const) {
    if (!(c[k] >= 0 && c[k] <= 1)) throw new RangeError(`${k} must be a probability in [0, 1]`);
  }
  for (const k of ['delayMs', 'jitterMs', 'reorderDelayMs', 'mtu'] as const) {
    if (!(c[k] >= 0)) throw new RangeError(`${k} must be a non-negative number`);
  }
  return c;
}

/** Hands out addresses of a prefix in order, skipping those taken. */
export class AddressPool {
  readonly #base: bigint;
  readonly #size: bigint;
  readonly #bytes: number;
  #next: bigint;

  constructor(prefix: string, firstOffset: bigint) {
    const slash = prefix.indexOf('/');
    const ip = slash < 0 ? undefined : parseIp(prefix.slice(0, slash));
    const len = slash < 0 ? NaN : Number(prefix.slice(slash + 1));
    if (!ip || !Number.isInteger(len) || len < 0 || len > ip.length * 8) throw new RangeError(`bad prefix ${prefix}`);
    let v = 0n;
    for (const b of ip) v = (v << 8n) | BigInt(b);
    const hostBits = BigInt(ip.length * 8 - len);
    this.#base = (v >> hostBits) << hostBits;
    this.#size = 1n << hostBits;
    this.#bytes = ip.length;
    this.#next = firstOffset;
  }

  at(offset: bigint): string {
    if (offset >= this.#size) throw new RangeError('address pool exhausted');
    let v = this.#base + offset;
    const out = new Uint8Array(this.#bytes);
    for (let i = this.#bytes - 1; i >= 0; i--) {
      out[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return formatIp(out);
  }

  take(isFree: (ip: string) => boolean): string {
    for (;;) {
      const ip = this.at(this.#next++);
      if (isFree(ip)) return ip;
    }
  }
}

// Friend accessors for VirtualNetwork, set in the static block so `Network` keeps its state in #private fields.
let nodesOf: (n: Network) => Map<string, NodeRef>;
let poolOf: (n: Network) => AddressPool | undefined;

/** One network segment: the public network, or the LAN behind a NAT. Create through `VirtualNetwork`. */
export class Network {
  readonly #name: string;
  readonly #kind: 'public' | 'lan';
  readonly #gateway: Nat | undefined;
  readonly #nodes = new Map<string, NodeRef>();
  readonly #pool: AddressPool | undefined;
  #conditions: LinkConditions;

  static {
    nodesOf = (n) => n.#nodes;
    poolOf = (n) => n.#pool;
  }

  /** @internal Use `VirtualNetwork.public` or `addNat(...).lan`. */
  constructor(name: string, kind: 'public' | 'lan', conditions: LinkConditions, pool: AddressPool | undefined, gateway: Nat | undefined) {
    this.#name = name;
    this.#kind = kind;
    this.#conditions = conditions;
    this.#pool = pool;
    this.#gateway = gateway;
  }

  /** Name in traces (`'public'`, or `<nat>.lan`). */
  get name(): string {
    return this.#name;
  }

  /** `'public'` for the network with no gateway, `'lan'` behind a NAT. */
  get kind(): 'public' | 'lan' {
    return this.#kind;
  }

  /** The NAT that routes this LAN's outbound traffic (undefined for the public network). */
  get gateway(): Nat | undefined {
    return this.#gateway;
  }

  /** Current conditions. */
  get conditions(): LinkConditions {
    return this.#conditions;
  }

  /** Changes conditions from now on (packets in flight keep their schedule). E.g. `{ loss: 1 }` for an outage. */
  setConditions(update: Partial<LinkConditions>): void {
    this.#conditions = mergeConditions(this.#conditions, update);
  }

  /** Addresses in use on this network (hosts and NAT sides), in the order they were added. */
  get addresses(): readonly string[] {
    return [...this.#nodes.keys()];
  }
}

/** @internal The address table of `network` (address -> node), which `VirtualNetwork` routes on and fills. */
export function networkNodes(network: Network): Map<string, NodeRef> {
  return nodesOf(network);
}

/** @internal True for an IPv4 or IPv6 multicast address (never assignable; routed as link-local multicast). */
export function isMulticast(ip: string): boolean {
  const b = parseIp(ip);
  if (!b) return false;
  return b.length === 4 ? (b[0]! & 0xf0) === 0xe0 : b[0] === 0xff;
}

/**
 * @internal A free address on `network`: `ip` in canonical form, or the next one of the network's prefix when
 * omitted. Throws `RangeError` when taken, multicast or not an address. The caller puts its node at it.
 */
export function reserveAddress(network: Network, ip: string | undefined): string {
  const nodes = nodesOf(network);
  let chosen: string;
  if (ip === undefined) {
    const pool = poolOf(network);
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
