/**
 * The `Nat` node of the virtual network: a LAN (`lan`) joined to an outside network through one external address,
 * translating with a `NatTranslator` (the RFC 4787 table of `nat.ts`). `virtual-network.ts` routes through it and
 * reaches its two network-side nodes with `natNodes`.
 * @module
 */
import type { NatBehaviorOptions, NatMappingInfo, NatTranslator } from './nat.js';
import { AddressPool, Network, networkNodes, type LinkConditions, type NodeRef } from './network.js';
import type { VirtualNetwork } from './virtual-network.js';

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

// Friend accessor: set in the static block so that `Nat` keeps its state in #private fields.
let nodesOf: (n: Nat) => { readonly inside: NodeRef; readonly outside: NodeRef };

/** A NAT joining a LAN (`lan`) to an outside network through one external address. Create with `addNat`. */
export class Nat {
  readonly #name: string;
  readonly #translator: NatTranslator;
  readonly #tcpTranslator: NatTranslator | undefined;
  readonly #outside: Network;
  readonly #lan: Network;
  readonly #insideIp: string;
  readonly #nodes: { readonly inside: NodeRef; readonly outside: NodeRef };
  readonly #net: VirtualNetwork;

  static {
    nodesOf = (n) => n.#nodes;
  }

  /** @internal Use `VirtualNetwork.addNat`. */
  constructor(
    net: VirtualNetwork,
    name: string,
    translator: NatTranslator,
    outside: Network,
    lanPrefix: string,
    lanConditions: LinkConditions,
    tcpTranslator?: NatTranslator,
  ) {
    this.#net = net;
    this.#name = name;
    this.#translator = translator;
    this.#tcpTranslator = tcpTranslator;
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

  /**
   * The TCP translation table (RFC 5382: TCP mappings and filters are kept apart from UDP ones), with the same
   * mapping and filtering behaviour; `blockUdp` does not apply to it.
   */
  get tcpTranslator(): NatTranslator {
    return this.#tcpTranslator ?? this.#translator;
  }

  /** The live mappings now. */
  mappings(): NatMappingInfo[] {
    return this.#translator.mappings(this.#net.now);
  }
}

/** @internal The nodes of a NAT's two sides: `inside` at its LAN address, `outside` at its public one. */
export function natNodes(nat: Nat): { readonly inside: NodeRef; readonly outside: NodeRef } {
  return nodesOf(nat);
}
