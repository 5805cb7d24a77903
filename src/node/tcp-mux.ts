/**
 * `IceTcpMux`: one listening TCP port per local address for the passive ICE-TCP candidates (RFC 6544) of any number
 * of `IceAgent`s, beside `IceUdpMux`. Each accepted connection waits, bounded, for its first RFC 4571 frame; the
 * sans-IO {@link TcpMuxRouter} (`stun/tcp-mux-router.ts`) names the agent whose ufrag that Binding request carries,
 * and the socket, with the bytes read so far, goes to that agent as if its own listener had accepted it
 * (`TcpEndpoint.adopt`, then the core's `tcpAccepted`). From then on the connection is the route: the mux never
 * touches it again, and the agent checks the request's integrity as on any accepted connection.
 * @module
 */
// node:net is loaded in listen(): `import('icewire')` stays free of it (test/cold-imports.test.ts).
import { MuxPortBase } from './mux-port.js';
import type { Server, Socket } from 'node:net';
import { IcewireError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import { TcpMuxRouter, type TcpMuxLimits, type TcpMuxRouterStats } from '../stun/tcp-mux-router.js';
import type { TransportAddress } from '../types.js';
import { monotonicClock, type Clock } from './clock.js';

export { TCP_MUX_DROP_REASONS, type TcpMuxDropReason, type TcpMuxLimits, type TcpMuxRouterStats } from '../stun/tcp-mux-router.js';

/** Options of {@link IceTcpMux.listen}. */
export interface IceTcpMuxOptions extends TcpMuxLimits {
  /** Local IP literals to listen on, one socket each. */
  readonly addresses: readonly string[];
  /** The port to listen on at every address (default 0: an ephemeral port per address). */
  readonly port?: number;
  /** Listening socket errors. Default: a process warning. */
  readonly onError?: (error: unknown, local: TransportAddress) => void;
  /** The clock of first-frame deadlines (default the monotonic clock agents use). */
  readonly clock?: Clock;
}

/** What an agent is given: an accepted socket and every byte the mux read from it (starting with the first frame). */
export type TcpMuxReceiver = (socket: Socket, bytes: Uint8Array) => void;

/** An agent's place on a TCP mux (used by `IceAgent`): the ufrags routed to it. */
export interface TcpMuxPort {
  /** The router's id of the agent. */
  readonly id: number;
  /** Routes another ufrag to the agent (a restart's). */
  addUfrag(ufrag: string): void;
  /** Stops routing `ufrag` to the agent. */
  removeUfrag(ufrag: string): void;
  readonly ufrags: readonly string[];
  /** Leaves the mux: no new connection reaches the agent (those it owns already stay its own). */
  close(): void;
  readonly closed: boolean;
}

interface PendingSocket {
  readonly socket: Socket;
  readonly onData: (chunk: Buffer) => void;
  readonly onClose: () => void;
}

function addressOf(address: string | undefined, port: number | undefined): TransportAddress {
  return { address: canonicalIp((address ?? '').replace(/^::ffff:(?=\d+\.)/, '')), port: port ?? 0 };
}

/** Set by {@link IceTcpMux}'s static block: its private leave, for the handles it gives out. */
let tcpMuxLeave: (mux: IceTcpMux, id: number) => void;

/** How long `close()` waits for the listening sockets to close. */
const CLOSE_WAIT_MS = 2000;

/**
 * One TCP port for the passive ICE-TCP candidates of many agents.
 *
 * ```ts
 * import { IceAgent, IceTcpMux } from 'icewire';
 * const tcpMux = await IceTcpMux.listen({ addresses: ['127.0.0.1'], port: 0 });
 * const agent = new IceAgent({ tcpMux, transports: ['tcp'], lite: true });
 * ```
 *
 * Close the agents before the mux.
 */
export class IceTcpMux {
  readonly #servers: Server[];
  readonly #router: TcpMuxRouter;
  readonly #clock: Clock;
  readonly #receivers = new Map<number, TcpMuxReceiver>();
  readonly #pending = new Map<string, PendingSocket>();
  #nextKey = 1;
  #timer: NodeJS.Timeout | undefined;
  #timerAt: number | undefined;
  #closed = false;
  /** The listening addresses, in the order of `options.addresses`. */
  readonly addresses: readonly TransportAddress[];

  private constructor(servers: Server[], addresses: TransportAddress[], router: TcpMuxRouter, clock: Clock) {
    this.#servers = servers;
    this.addresses = addresses;
    this.#router = router;
    this.#clock = clock;
  }

  /**
   * Opens the listening sockets.
   * @throws IcewireError `ERR_INVALID_ARGUMENT` for no address, a non-IP address or a bad port; the system's error
   *   (e.g. `EADDRINUSE`) when a port is taken; `UdpMuxError` for a bad limit.
   */
  static async listen(options: IceTcpMuxOptions): Promise<IceTcpMux> {
    if (!Array.isArray(options?.addresses) || options.addresses.length === 0 || options.addresses.some((a) => typeof a !== 'string' || ipFamily(a) === 0)) {
      throw new IcewireError('ERR_INVALID_ARGUMENT', 'IceTcpMux needs addresses: a non-empty list of IP literals');
    }
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new IcewireError('ERR_INVALID_ARGUMENT', `bad port ${String(port)}`);
    const router = new TcpMuxRouter(options);
    // tcp-endpoint.ts holds node:net, loaded here on first use (import('icewire') does not load it).
    const { listenAll } = await import('./tcp-endpoint.js');
    const { servers, addresses } = await listenAll(options.addresses, port);
    const mux = new IceTcpMux(servers, addresses, router, options.clock ?? monotonicClock);
    servers.forEach((s, i) => {
      s.on('connection', (socket) => mux.#accept(socket));
      s.on('error', (e) => (options.onError ? options.onError(e, addresses[i]!) : process.emitWarning(`IceTcpMux: ${String(e)}`)));
    });
    return mux;
  }

  /** Agents on the mux now. */
  get agentCount(): number {
    return this.#receivers.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Connections accepted, waiting, handed to agents, and closed by the mux (by reason). */
  get stats(): TcpMuxRouterStats {
    return this.#router.stats;
  }

  /**
   * Adds an agent with its local ufrag; `receive` takes each connection whose first check names it.
   * @throws UdpMuxError `ufrag-taken` or `agent-limit`; `ERR_TCP_MUX` after close.
   */
  open(ufrag: string, receive: TcpMuxReceiver): TcpMuxPort {
    if (this.#closed) throw new IcewireError('ERR_TCP_MUX', 'IceTcpMux is closed');
    const id = this.#router.register(ufrag);
    this.#receivers.set(id, receive);
    return new TcpMuxHandle(this, this.#router, id);
  }

  static {
    tcpMuxLeave = (mux, id) => {
      mux.#router.unregister(id);
      mux.#receivers.delete(id);
    };
  }

  /** Closes the listening sockets and every connection not yet handed to an agent. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const [key, p] of this.#pending) {
      this.#router.forget(key);
      p.socket.destroy();
    }
    this.#pending.clear();
    let timer: NodeJS.Timeout | undefined;
    const waits = this.#servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r())));
    await Promise.race([Promise.allSettled(waits), new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  #accept(socket: Socket): void {
    if (this.#closed) return void socket.destroy();
    const key = String(this.#nextKey++);
    const local = addressOf(socket.localAddress, socket.localPort);
    const remote = addressOf(socket.remoteAddress, socket.remotePort);
    socket.on('error', () => {
      // 'close' follows; the owner (the mux, then the agent) reports it.
    });
    if (!this.#router.accept(this.#clock.now(), key, local, remote)) return void socket.destroy();
    const onData = (chunk: Buffer): void => this.#data(key, chunk);
    const onClose = (): void => {
      if (this.#pending.delete(key)) this.#router.closed(key);
      this.#rearm();
    };
    this.#pending.set(key, { socket, onData, onClose });
    socket.on('data', onData);
    socket.once('close', onClose);
    this.#rearm();
  }

  #data(key: string, chunk: Buffer): void {
    const p = this.#pending.get(key);
    if (p === undefined) return;
    const d = this.#router.receive(this.#clock.now(), key, chunk);
    if (d.type === 'wait') return;
    this.#pending.delete(key);
    p.socket.off('data', p.onData);
    p.socket.off('close', p.onClose);
    this.#rearm();
    if (d.type === 'drop') return void p.socket.destroy();
    const receive = this.#receivers.get(d.agent);
    if (receive === undefined) return void p.socket.destroy(); // cannot happen: leaving unregisters first
    // Synchronously: the agent's own 'data' listener is on before the socket emits again.
    receive(p.socket, d.bytes);
  }

  /** One timer for every first-frame deadline (they are in accept order, so only the earliest matters). */
  #rearm(): void {
    const at = this.#router.pollTimeout();
    if (at === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    if (at === undefined || this.#closed) return;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - this.#clock.now()));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timerAt = undefined;
    for (const key of this.#router.handleTimeout(this.#clock.now())) {
      const p = this.#pending.get(key);
      if (p === undefined) continue;
      this.#pending.delete(key);
      p.socket.off('close', p.onClose);
      p.socket.destroy();
    }
    this.#rearm();
  }
}

/** The {@link TcpMuxPort} of one agent (methods on the prototype: a mux holds many). */
class TcpMuxHandle extends MuxPortBase implements TcpMuxPort {
  readonly #mux: IceTcpMux;

  constructor(mux: IceTcpMux, router: TcpMuxRouter, id: number) {
    super(router, id);
    this.#mux = mux;
  }

  protected leave(): void {
    tcpMuxLeave(this.#mux, this.id);
  }
}
