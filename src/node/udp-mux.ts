/**
 * `IceUdpMux`: one UDP socket per local address serving any number of `IceAgent`s (the SFU / SIP gateway shape:
 * every peer on one port). The routing decisions are the sans-IO {@link UdpMuxRouter} (`stun/mux-router.ts`); this
 * file only binds the sockets, feeds the router and hands each datagram to its agent.
 *
 * An agent joins with `new IceAgent({ udpMux })`: its host candidates are the mux's addresses, a restart keeps
 * them and routes the new ufrag beside the old one until the previous pair is released, and `close()` removes its
 * routes at once. TURN cannot share the mux socket (an allocation belongs to one client 5-tuple, RFC 8656 §2.2), so an
 * agent with TURN servers binds its own sockets for TURN only.
 * @module
 */
import { MuxPortBase } from './mux-port.js';
import { IcewireError } from '../errors.js';
import { ipFamily } from '../ip.js';
import { UdpMuxRouter, type UdpMuxLimits, type UdpMuxRouterStats } from '../stun/mux-router.js';
import type { Datagram, TransportAddress } from '../types.js';
import { monotonicClock, type Clock } from './clock.js';
import { UdpEndpoint } from './udp-endpoint.js';

export { UdpMuxError, type MuxDropReason, type UdpMuxLimits, type UdpMuxRouterStats } from '../stun/mux-router.js';

/** Options of {@link IceUdpMux.bind}. */
export interface IceUdpMuxOptions extends UdpMuxLimits {
  /** Local IP literals to bind, one socket each (at most one per family is the usual setup). */
  readonly addresses: readonly string[];
  /** The port to bind on every address (default 0: an ephemeral port per address). */
  readonly port?: number;
  /** SO_RCVBUF / SO_SNDBUF, bytes (default: the OS's). A busy mux wants a large receive buffer. */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  /** Socket errors and failed sends. Default: a process warning. */
  readonly onError?: (error: unknown, local: TransportAddress) => void;
  /** The clock of transaction lifetimes and route takeovers (default the monotonic clock agents use). */
  readonly clock?: Clock;
}

/** Counters of an {@link IceUdpMux}: the router's, plus datagrams sent. */
export interface IceUdpMuxStats extends UdpMuxRouterStats {
  readonly sent: number;
}

/** An agent's place on a mux (used by `IceAgent`; exposed for other edges built on the mux). */
export interface UdpMuxPort {
  /** The router's id of the agent. */
  readonly id: number;
  /** Sends from the mux socket bound to `datagram.local`, teaching the router what the agent sends. */
  send(datagram: Datagram): void;
  /** Routes another ufrag to the agent (a restart's). */
  addUfrag(ufrag: string): void;
  /** Stops routing `ufrag` to the agent. */
  removeUfrag(ufrag: string): void;
  /** The ufrags routed to the agent. */
  readonly ufrags: readonly string[];
  /** Leaves the mux: every route, ufrag and transaction of the agent goes at once; later sends are dropped. */
  close(): void;
  readonly closed: boolean;
}

type Receiver = (datagram: Datagram, buffer: Buffer) => void;

/** Set by {@link IceUdpMux}'s static block: its private send and leave, for the {@link MuxPort}s it hands out. */
let muxSend: (mux: IceUdpMux, id: number, datagram: Datagram) => void;
let muxLeave: (mux: IceUdpMux, id: number) => void;

/**
 * The {@link UdpMuxPort} of one agent: a small object with its methods on the prototype (a mux holds thousands of
 * them; an object of closures and accessors cost ~900 B each).
 */
class MuxPort extends MuxPortBase implements UdpMuxPort {
  readonly #mux: IceUdpMux;

  constructor(mux: IceUdpMux, router: UdpMuxRouter, id: number) {
    super(router, id);
    this.#mux = mux;
  }

  send(datagram: Datagram): void {
    if (!this.closed) muxSend(this.#mux, this.id, datagram);
  }

  protected leave(): void {
    muxLeave(this.#mux, this.id);
  }
}

/**
 * One UDP port for many ICE agents.
 *
 * ```ts
 * import { IceAgent, IceUdpMux } from 'icewire';
 * const mux = await IceUdpMux.bind({ addresses: ['127.0.0.1'], port: 0 });
 * const agent = new IceAgent({ udpMux: mux, lite: true });
 * ```
 *
 * Close the agents before the mux.
 */
export class IceUdpMux {
  readonly #endpoint: UdpEndpoint;
  readonly #router: UdpMuxRouter;
  readonly #clock: Clock;
  readonly #receivers = new Map<number, Receiver>();
  #sent = 0;

  private constructor(endpoint: UdpEndpoint, router: UdpMuxRouter, clock: Clock) {
    this.#endpoint = endpoint;
    this.#router = router;
    this.#clock = clock;
  }

  /**
   * Binds the mux's sockets.
   * @throws IcewireError `ERR_INVALID_ARGUMENT` for no address, a non-IP address or a bad port; `UdpBindError` when
   *   the port is taken; `UdpMuxError` for a bad limit.
   */
  static async bind(options: IceUdpMuxOptions): Promise<IceUdpMux> {
    if (!Array.isArray(options?.addresses) || options.addresses.length === 0 || options.addresses.some((a) => typeof a !== 'string' || ipFamily(a) === 0)) {
      throw new IcewireError('ERR_INVALID_ARGUMENT', 'IceUdpMux needs addresses: a non-empty list of IP literals');
    }
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new IcewireError('ERR_INVALID_ARGUMENT', `bad port ${String(port)}`);
    const router = new UdpMuxRouter(options);
    const clock = options.clock ?? monotonicClock;
    let receive: Receiver = () => undefined;
    const endpoint = await UdpEndpoint.bind({
      addresses: options.addresses,
      ...(port !== 0 ? { portRange: { min: port, max: port } } : {}),
      onDatagram: (d, buffer) => receive(d, buffer),
      ...(options.onError ? { onError: options.onError } : {}),
      ...(options.recvBufferSize !== undefined ? { recvBufferSize: options.recvBufferSize } : {}),
      ...(options.sendBufferSize !== undefined ? { sendBufferSize: options.sendBufferSize } : {}),
    });
    const mux = new IceUdpMux(endpoint, router, clock);
    receive = (d, buffer) => mux.#receive(d, buffer);
    return mux;
  }

  /** The bound address of each socket (the host candidates of every agent on the mux). */
  get addresses(): readonly TransportAddress[] {
    return this.#endpoint.addresses;
  }

  /** Agents on the mux now. */
  get agentCount(): number {
    return this.#receivers.size;
  }

  get closed(): boolean {
    return this.#endpoint.closed;
  }

  /** Routing counters: datagrams routed and dropped (by reason), routes, conflicts, evictions. */
  get stats(): IceUdpMuxStats {
    return { ...this.#router.stats, sent: this.#sent };
  }

  /** The agent id owning the route from `remote` to the mux socket `local` (for tests and diagnostics). */
  routeOwner(local: TransportAddress, remote: TransportAddress): number | undefined {
    return this.#router.routeOwner(local, remote);
  }

  /**
   * Adds an agent with its local ufrag; `receive` gets every datagram routed to it.
   * @throws UdpMuxError `ufrag-taken` or `agent-limit`; InvalidStateError-like `ERR_UDP_MUX` after close.
   */
  open(ufrag: string, receive: Receiver): UdpMuxPort {
    if (this.closed) throw new IcewireError('ERR_UDP_MUX', 'IceUdpMux is closed');
    const id = this.#router.register(ufrag);
    this.#receivers.set(id, receive);
    return new MuxPort(this, this.#router, id);
  }

  static {
    muxSend = (mux, id, datagram) => mux.#send(id, datagram);
    muxLeave = (mux, id) => {
      mux.#router.unregister(id);
      mux.#receivers.delete(id);
    };
  }

  #send(id: number, datagram: Datagram): void {
    this.#router.noteTransmit(this.#clock.now(), id, datagram);
    this.#sent++;
    this.#endpoint.send(datagram);
  }

  /** Closes the sockets. Agents still on the mux can no longer send or receive; close them first. */
  close(): Promise<void> {
    return this.#endpoint.close();
  }

  #receive(d: Datagram, buffer: Buffer): void {
    const r = this.#router.route(this.#clock.now(), d);
    if (typeof r !== 'number') return; // dropped and counted by the router
    this.#receivers.get(r)?.(d, buffer);
  }
}
