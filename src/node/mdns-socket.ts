/**
 * The Node binding of {@link MdnsResponder}: one `node:dgram` IPv4 socket joined to the mDNS group, driven by a
 * {@link MachineDriver}. Group, port and multicast interface are configurable so that tests can run on loopback
 * (`interfaceAddress: '127.0.0.1'`) on a private port, away from the system's mDNS daemon.
 *
 * Unicast responses: several mDNS stacks on one host share port 5353 (SO_REUSEADDR, RFC 6762 §15.1), and a unicast
 * datagram to that port reaches only one of them (on Linux the last socket bound, not necessarily us). So this
 * binding does not ask for unicast ("QU") responses by default: answers to its queries come by multicast, which
 * every socket on the port receives. Set `requestUnicastResponse: true` when this socket is known to own the port.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { MdnsResponder, type MdnsEvent, type MdnsFamily, type MdnsResponderOptions } from '../candidates/mdns.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { MachineDriver } from './driver.js';
import { cryptoRandom } from './random.js';

/** Options of {@link MdnsSocket.open}. */
export interface MdnsSocketOptions extends Omit<MdnsResponderOptions, 'random' | 'local' | 'group'> {
  /** Default `crypto.randomBytes`. */
  readonly random?: RandomSource;
  /** IPv4 multicast group (default 224.0.0.251). */
  readonly group?: string;
  /** UDP port (default 5353). */
  readonly port?: number;
  /**
   * Local interface address for sending and joining the group (default: the OS's choice). Tests use `'127.0.0.1'`
   * so that nothing leaves the host.
   */
  readonly interfaceAddress?: string;
  /** Receive our own multicasts (default true: needed for several agents on one host). */
  readonly multicastLoopback?: boolean;
  /** Multicast TTL (default 255, RFC 6762 §11). */
  readonly multicastTtl?: number;
  /** Every responder event (resolved/unresolved), besides the promises of `resolve`. */
  readonly onEvent?: (event: MdnsEvent) => void;
  /** Socket errors after bind (default: ignored, counted in `socketErrors`). */
  readonly onError?: (error: Error) => void;
}

/** A running mDNS responder on a real socket. */
export class MdnsSocket {
  readonly #socket: Socket;
  readonly #driver: MachineDriver;
  readonly #responder: MdnsResponder;
  readonly #waiters = new Map<string, ((address: string | undefined) => void)[]>();
  #pendingSends = 0;
  #drained: (() => void) | undefined;
  #socketErrors = 0;
  #closed: Promise<void> | undefined;

  private constructor(socket: Socket, local: TransportAddress, group: TransportAddress, options: MdnsSocketOptions) {
    this.#socket = socket;
    const { random, onEvent, onError: _e, group: _g, port: _p, interfaceAddress: _i, multicastLoopback: _l, multicastTtl: _t, ...rest } = options;
    this.#responder = new MdnsResponder({
      ...rest,
      random: random ?? cryptoRandom,
      local,
      group,
      requestUnicastResponse: options.requestUnicastResponse ?? false,
    });
    this.#driver = new MachineDriver({ send: (d) => this.#send(d), unref: true });
    this.#driver.attach(this.#responder, (e) => {
      const list = this.#waiters.get(e.name.toLowerCase());
      if (list !== undefined) {
        this.#waiters.delete(e.name.toLowerCase());
        for (const w of list) w(e.type === 'resolved' ? e.address : undefined);
      }
      onEvent?.(e);
    });
    socket.on('message', (msg, rinfo) => {
      this.#driver.receive({
        local,
        remote: { address: rinfo.address, port: rinfo.port },
        data: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
      });
    });
    socket.on('error', (err) => {
      this.#socketErrors++;
      options.onError?.(err);
    });
  }

  /**
   * Binds the socket (SO_REUSEADDR, shared with other mDNS stacks), joins the group on `interfaceAddress`, and
   * starts the responder. Rejects with the bind error.
   */
  static async open(options: MdnsSocketOptions = {}): Promise<MdnsSocket> {
    const group = options.group ?? '224.0.0.251';
    const port = options.port ?? 5353;
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind({ port, address: '0.0.0.0' }, () => {
        socket.off('error', onError);
        resolve();
      });
    });
    try {
      if (options.interfaceAddress !== undefined) {
        socket.setMulticastInterface(options.interfaceAddress);
        socket.addMembership(group, options.interfaceAddress);
      } else {
        socket.addMembership(group);
      }
      socket.setMulticastLoopback(options.multicastLoopback ?? true);
      socket.setMulticastTTL(options.multicastTtl ?? 255);
    } catch (err) {
      socket.close();
      throw err;
    }
    const local = { address: options.interfaceAddress ?? '0.0.0.0', port: socket.address().port };
    return new MdnsSocket(socket, local, { address: group, port }, options);
  }

  /** The sans-IO responder (for stats and registrations). */
  get responder(): MdnsResponder {
    return this.#responder;
  }

  /** Socket errors seen after bind. */
  get socketErrors(): number {
    return this.#socketErrors;
  }

  /** Registers (and announces) an mDNS name for `address`; same address, same name. */
  register(address: string): string {
    const name = this.#responder.register(this.#driver.now(), address);
    this.#driver.kick(this.#responder);
    return name;
  }

  /** The cached address of a name (ours, or learnt from an answer or announcement), without querying. */
  lookup(name: string): string | undefined {
    return this.#responder.lookup(this.#driver.now(), name);
  }

  /**
   * Resolves a `.local` name: the address, or undefined when it could not be resolved in time. `families` limits
   * the queries to A (4) and/or AAAA (6) records (default both, one query each).
   */
  resolve(name: string, families?: readonly MdnsFamily[]): Promise<string | undefined> {
    if (this.#closed !== undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const key = name.toLowerCase();
      const list = this.#waiters.get(key) ?? [];
      list.push(resolve);
      this.#waiters.set(key, list);
      this.#responder.resolve(this.#driver.now(), name, families);
      this.#driver.kick(this.#responder);
    });
  }

  /** Says goodbye for our names, then closes the socket. Pending resolutions settle with undefined. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#responder.close(this.#driver.now());
      this.#driver.kick(this.#responder);
      this.#driver.close();
      for (const list of this.#waiters.values()) for (const w of list) w(undefined);
      this.#waiters.clear();
      if (this.#pendingSends > 0) await new Promise<void>((r) => (this.#drained = r));
      await new Promise<void>((r) => this.#socket.close(() => r()));
    })();
    return this.#closed;
  }

  #send(d: Datagram): void {
    this.#pendingSends++;
    this.#socket.send(d.data, d.remote.port, d.remote.address, (err) => {
      if (err) this.#socketErrors++;
      if (--this.#pendingSends === 0 && this.#drained) this.#drained();
    });
  }
}
