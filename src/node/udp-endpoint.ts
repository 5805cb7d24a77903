/**
 * UDP sockets for the Node edge: one `node:dgram` socket per local address, each reported as its bound
 * {@link TransportAddress} (the candidate base), and a `send` that routes a {@link Datagram} out of the socket whose
 * bound address equals `datagram.local`.
 * @module
 */
import { createSocket, type Socket, type SocketOptions, type SocketType } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { IcewireError, InvalidStateError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import { isDataByte } from '../stun/demux.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { formatAddress } from '../types.js';
import { cryptoRandom } from './random.js';

/** An inclusive range of UDP ports to bind in. */
export interface PortRange {
  readonly min: number;
  readonly max: number;
}

/** Default bound on bind attempts per address when a {@link PortRange} is given. */
export const DEFAULT_MAX_BIND_ATTEMPTS = 64;

/** Binding one address failed for a reason other than every tried port being taken. */
export class UdpBindError extends IcewireError {
  /** The local address that could not be bound. */
  readonly address: string;
  /** The port tried last (0 = ephemeral). */
  readonly port: number;
  constructor(address: string, port: number, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('ERR_UDP_BIND', `cannot bind UDP ${formatAddress({ address, port })}: ${detail}`, { cause });
    this.address = address;
    this.port = port;
  }
}

/** Every port tried in a {@link PortRange} was in use (or not permitted), up to the attempt bound. */
export class PortRangeExhaustedError extends IcewireError {
  /** The local address that could not be bound. */
  readonly address: string;
  readonly range: PortRange;
  /** Ports tried before giving up. */
  readonly attempts: number;
  constructor(address: string, range: PortRange, attempts: number, cause: unknown) {
    super(
      'ERR_PORT_RANGE_EXHAUSTED',
      `no free UDP port for ${address} in ${range.min}-${range.max} after ${attempts} attempt(s)`,
      { cause },
    );
    this.address = address;
    this.range = range;
    this.attempts = attempts;
  }
}

/** Options of {@link UdpEndpoint.bind}. */
export interface UdpEndpointOptions {
  /** Local IP literals to bind, one socket each (IPv4 → `udp4`, IPv6 → `udp6`). */
  readonly addresses: readonly string[];
  /**
   * Receives every datagram, with `local` set to the receiving socket's bound address; `buffer` is the Buffer dgram
   * delivered, over the same bytes as `datagram.data` (a plain Uint8Array view), for a receiver that hands the bytes
   * on as a Buffer without wrapping them again.
   */
  readonly onDatagram: (datagram: Datagram, buffer: Buffer) => void;
  /**
   * Receives socket errors, asynchronous send failures, and exceptions thrown by `onDatagram`, with the socket's
   * bound address. Default: a process warning.
   */
  readonly onError?: (error: unknown, local: TransportAddress) => void;
  /** Ports to bind in (inclusive). Default: an ephemeral port chosen by the OS. */
  readonly portRange?: PortRange;
  /** With `portRange`: how many ports to try per address before {@link PortRangeExhaustedError}. Default 64. */
  readonly maxBindAttempts?: number;
  /** `udp6` sockets refuse IPv4-mapped traffic (default true: IPv4 is bound separately). */
  readonly ipv6Only?: boolean;
  /**
   * SO_RCVBUF and SO_SNDBUF of every socket, bytes (default: the OS's). A server taking many small datagrams a
   * second raises the receive buffer so that bursts are not dropped by the kernel; Linux doubles the value asked
   * and caps it at `net.core.rmem_max` / `wmem_max` (see {@link UdpEndpoint.bufferSizes}).
   */
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
  /**
   * What to do when one address cannot be bound: `'reject'` (default) closes every socket and rejects; `'skip'`
   * leaves it out and records the error in {@link UdpEndpoint.failures}.
   */
  readonly onBindError?: 'reject' | 'skip';
  /** Picks the first port tried in `portRange`. Default `crypto.randomBytes`. */
  readonly random?: RandomSource;
  /**
   * Pairs of indexes into `addresses` (same IP) bound as an RTP/RTCP pair: an even port for the first and the next
   * (odd) port for the second, as RFC 3550 §11 asks of RTP, when such a pair is free within
   * {@link RTP_PAIR_ATTEMPTS} tries; otherwise each gets a port of its own (the SDP says which with `a=rtcp`, RFC 3605).
   */
  readonly rtpRtcpPairs?: readonly (readonly [rtp: number, rtcp: number])[];
}

/** Tries at finding an even port with a free next port before binding RTP and RTCP anywhere. */
export const RTP_PAIR_ATTEMPTS = 16;

/** One bound socket. */
interface Bound {
  readonly socket: Socket;
  readonly local: TransportAddress;
  /** The send-completion callback of this socket: one per socket, not a closure per datagram. */
  readonly onSent: (error: Error | null) => void;
  /** Application-data datagrams sent (see {@link DATA_CALLBACK_EVERY}). */
  dataSends: number;
}

/**
 * Application data asks for a send-completion callback only once per this many datagrams. Each callback costs a
 * `process.nextTick` and a call per datagram even when the send finished synchronously (the usual case); without
 * one, dgram drops the error silently. Sampling keeps a lasting failure (unreachable network, a firewall's EPERM)
 * reported within a few datagrams; STUN always carries the callback.
 */
const DATA_CALLBACK_EVERY = 64;

const RETRYABLE_BIND_CODES = new Set(['EADDRINUSE', 'EACCES']);

function keyOf(a: TransportAddress): string {
  return `${canonicalIp(a.address)}|${a.port}`;
}

function invalid(message: string): IcewireError {
  return new IcewireError('ERR_INVALID_ARGUMENT', message);
}

function defaultOnError(error: unknown, local: TransportAddress): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(`icewire: UDP socket ${formatAddress(local)}: ${message}`, {
    type: 'IcewireSocketWarning',
    code: 'ICEWIRE_SOCKET_ERROR',
  });
}

let lastLookup: { readonly host: string; readonly family: 0 | 4 | 6 } = { host: '', family: 0 };

/**
 * dgram's address lookup, answering IP literals synchronously. The default (`dns.lookup`) answers a literal on the
 * next tick, so every `send()` of an unconnected socket left only after the whole current callback had run: a
 * check's response waited for the agent's bookkeeping after it, and every datagram paid a `process.nextTick`.
 * Only literals are ever sent to or bound here; anything else still goes through `dns.lookup`.
 */
const literalLookup: NonNullable<SocketOptions['lookup']> = (hostname, options, callback) => {
  // ipFamily, not node:net's isIP (node:net is otherwise not needed without TURN over TCP/TLS); it parses, so the
  // last answer is kept: dgram looks up the destination of every datagram, and a session sends to one peer.
  if (hostname !== lastLookup.host) lastLookup = { host: hostname, family: ipFamily(hostname) };
  const family = lastLookup.family;
  if (family !== 0) callback(null, hostname, family);
  else dnsLookup(hostname, options, callback);
};

/** Binds one socket; on failure the socket is closed so no handle leaks. */
/** Socket buffer sizes asked for (undefined: the OS default). */
interface BufferSizes {
  readonly recvBufferSize?: number;
  readonly sendBufferSize?: number;
}

function bindSocket(type: SocketType, address: string, port: number, ipv6Only: boolean, buffers: BufferSizes): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const common = { type, reuseAddr: false, lookup: literalLookup, ...buffers };
    const socket = createSocket(type === 'udp6' ? { ...common, ipv6Only } : common);
    const onError = (error: Error): void => {
      socket.off('listening', onListening);
      try {
        socket.close();
      } catch {
        // already closed: nothing to release
      }
      reject(error);
    };
    const onListening = (): void => {
      socket.off('error', onError);
      resolve(socket);
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    // exclusive: never share the handle with cluster workers; each agent owns its ports.
    socket.bind({ address, port, exclusive: true });
  });
}

/** Binds `address` on an ephemeral port or on the first free port of the range, starting at a random offset. */
async function bindAddress(
  address: string,
  range: PortRange | undefined,
  maxAttempts: number,
  ipv6Only: boolean,
  random: RandomSource,
  buffers: BufferSizes,
): Promise<Socket> {
  const type: SocketType = ipFamily(address) === 6 ? 'udp6' : 'udp4';
  if (range === undefined) {
    try {
      return await bindSocket(type, address, 0, ipv6Only, buffers);
    } catch (error) {
      throw new UdpBindError(address, 0, error);
    }
  }
  const size = range.max - range.min + 1;
  const attempts = Math.min(size, maxAttempts);
  const r = random.bytes(4);
  const offset = (((r[0] ?? 0) << 24) | ((r[1] ?? 0) << 16) | ((r[2] ?? 0) << 8) | (r[3] ?? 0)) >>> 0;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    // Random start, then sequential: spreads concurrent agents over the range yet tries each port at most once.
    const port = range.min + ((offset + i) % size);
    try {
      return await bindSocket(type, address, port, ipv6Only, buffers);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code !== 'string' || !RETRYABLE_BIND_CODES.has(code)) throw new UdpBindError(address, port, error);
      lastError = error;
    }
  }
  throw new PortRangeExhaustedError(address, range, attempts, lastError);
}

/**
 * Binds an even RTP port and RTCP on the next one (RFC 3550 §11), at most {@link RTP_PAIR_ATTEMPTS} tries; then
 * falls back to any two ports. Within `range` the even ports are tried from a random offset; without one the OS
 * picks an ephemeral port and its even/odd neighbour completes the pair.
 */
async function bindRtpPair(
  address: string,
  range: PortRange | undefined,
  maxAttempts: number,
  ipv6Only: boolean,
  random: RandomSource,
  buffers: BufferSizes,
): Promise<[Socket, Socket]> {
  const type: SocketType = ipFamily(address) === 6 ? 'udp6' : 'udp4';
  const tryBind = async (port: number): Promise<Socket | undefined> => {
    try {
      return await bindSocket(type, address, port, ipv6Only, buffers);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && RETRYABLE_BIND_CODES.has(code)) return undefined;
      throw new UdpBindError(address, port, error);
    }
  };
  const evens = range === undefined ? 0 : Math.floor((range.max - 1) / 2) - Math.ceil(range.min / 2) + 1;
  const r = random.bytes(4);
  const offset = (((r[0] ?? 0) << 24) | ((r[1] ?? 0) << 16) | ((r[2] ?? 0) << 8) | (r[3] ?? 0)) >>> 0;
  const attempts = range === undefined ? RTP_PAIR_ATTEMPTS : Math.min(RTP_PAIR_ATTEMPTS, evens);
  for (let i = 0; i < attempts; i++) {
    let first: Socket | undefined;
    let rtp: number;
    if (range === undefined) {
      first = await tryBind(0);
      if (first === undefined) continue;
      const p = first.address().port;
      rtp = p % 2 === 0 ? p : p - 1;
      if (rtp < 1024) {
        await closeSocket(first);
        continue;
      }
    } else {
      rtp = 2 * Math.ceil(range.min / 2) + 2 * ((offset + i) % evens);
      first = await tryBind(rtp);
      if (first === undefined) continue;
    }
    const firstPort = first.address().port;
    let second: Socket | undefined;
    try {
      second = await tryBind(firstPort === rtp ? rtp + 1 : rtp);
    } catch (error) {
      await closeSocket(first); // e.g. EMFILE: no handle may outlive the rejection
      throw error;
    }
    if (second !== undefined) return firstPort === rtp ? [first, second] : [second, first];
    await closeSocket(first);
  }
  // No free even/odd pair: any two ports (a=rtcp names the RTCP one).
  const rtpSocket = await bindAddress(address, range, maxAttempts, ipv6Only, random, buffers);
  try {
    return [rtpSocket, await bindAddress(address, range, maxAttempts, ipv6Only, random, buffers)];
  } catch (error) {
    await closeSocket(rtpSocket);
    throw error;
  }
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

/**
 * Resolves after libuv has run the close callbacks of handles closed so far. A dgram `'close'` event fires when the
 * close is requested; the handle itself is released in the loop's close phase, which runs after the check phase of
 * the same turn, so the second `setImmediate` is the first point where it is certainly gone.
 */
function handlesReleased(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * A set of bound UDP sockets. Create with {@link UdpEndpoint.bind}; always {@link UdpEndpoint.close} it.
 */
export class UdpEndpoint {
  #sockets: readonly Bound[];
  readonly #byLocal: Map<string, Bound>;
  readonly #failures: readonly IcewireError[];
  #closing: Promise<void> | undefined;

  private constructor(sockets: readonly Bound[], failures: readonly IcewireError[]) {
    this.#sockets = sockets;
    this.#byLocal = new Map(sockets.map((b) => [keyOf(b.local), b]));
    this.#failures = failures;
  }

  /**
   * Binds one UDP socket per address in `options.addresses` (in parallel) and starts delivering datagrams to
   * `options.onDatagram`.
   * @throws IcewireError `ERR_INVALID_ARGUMENT` (synchronously, as a rejected promise) for a non-IP address, a bad
   *   range or attempt bound.
   * @throws {@link UdpBindError} or {@link PortRangeExhaustedError} when an address cannot be bound and
   *   `onBindError` is `'reject'` (every socket already bound is closed first).
   */
  static async bind(options: UdpEndpointOptions): Promise<UdpEndpoint> {
    const { portRange: range } = options;
    for (const a of options.addresses) {
      if (ipFamily(a) === 0) throw invalid(`not an IP address literal: ${JSON.stringify(a)}`);
    }
    if (range !== undefined) {
      const ok = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;
      if (!ok(range.min) || !ok(range.max) || range.min > range.max) {
        throw invalid(`bad port range ${range.min}-${range.max} (need integers 1 <= min <= max <= 65535)`);
      }
    }
    const maxAttempts = options.maxBindAttempts ?? DEFAULT_MAX_BIND_ATTEMPTS;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw invalid(`maxBindAttempts must be >= 1`);
    const ipv6Only = options.ipv6Only ?? true;
    const random = options.random ?? cryptoRandom;
    const buffers: { recvBufferSize?: number; sendBufferSize?: number } = {};
    for (const key of ['recvBufferSize', 'sendBufferSize'] as const) {
      const v = options[key];
      if (v === undefined) continue;
      if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) throw invalid(`${key} must be a positive integer of bytes`);
      buffers[key] = v;
    }

    const addresses = options.addresses;
    const pairOf = new Map<number, number>();
    const inPair = new Set<number>();
    for (const [rtp, rtcp] of options.rtpRtcpPairs ?? []) {
      const ok = (i: number) => Number.isInteger(i) && i >= 0 && i < addresses.length && !inPair.has(i);
      if (!ok(rtp) || !ok(rtcp) || rtp === rtcp || canonicalIp(addresses[rtp]!) !== canonicalIp(addresses[rtcp]!)) {
        throw invalid(`bad RTP/RTCP pair [${rtp}, ${rtcp}]: two distinct indexes of one IP, each in one pair`);
      }
      pairOf.set(rtp, rtcp);
      inPair.add(rtp).add(rtcp);
    }
    // One task per single address or RTP/RTCP pair; each yields its sockets with their indexes.
    const tasks: Promise<[number, Socket][]>[] = [];
    addresses.forEach((a, i) => {
      const rtcp = pairOf.get(i);
      if (rtcp !== undefined) {
        tasks.push(bindRtpPair(a, range, maxAttempts, ipv6Only, random, buffers).then(([x, y]) => [[i, x], [rtcp, y]]));
      } else if (!inPair.has(i)) {
        tasks.push(bindAddress(a, range, maxAttempts, ipv6Only, random, buffers).then((x) => [[i, x]]));
      }
    });
    const results = await Promise.allSettled(tasks);
    const byIndex: [number, Socket][] = [];
    const failures: IcewireError[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') byIndex.push(...r.value);
      else failures.push(r.reason instanceof IcewireError ? r.reason : new UdpBindError('?', 0, r.reason));
    }
    const sockets = byIndex.sort((x, y) => x[0] - y[0]).map(([, socket]) => socket);
    if (failures.length > 0 && options.onBindError !== 'skip') {
      await Promise.all(sockets.map(closeSocket));
      await handlesReleased();
      throw failures[0]!;
    }

    const onError = options.onError ?? defaultOnError;
    const onDatagram = options.onDatagram;
    const bound: Bound[] = [];
    for (const socket of sockets) {
      const info = socket.address();
      const local: TransportAddress = Object.freeze({ address: canonicalIp(info.address), port: info.port });
      socket.on('error', (error) => onError(error, local));
      socket.on('message', (msg, rinfo) => {
        // A plain Uint8Array view: Buffer#slice aliases where Uint8Array#slice copies, and the core expects the latter.
        // libuv formats an IPv4 source as plain dotted decimal, already canonical; IPv6 text (e.g. `::ffff:1.2.3.4`)
        // is canonicalised so that it compares with candidate addresses.
        const datagram: Datagram = {
          local,
          remote: { address: rinfo.family === 'IPv4' ? rinfo.address : canonicalIp(rinfo.address), port: rinfo.port },
          data: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
        };
        try {
          onDatagram(datagram, msg);
        } catch (error) {
          onError(error, local);
        }
      });
      bound.push({
        socket,
        local,
        onSent: (error) => {
          if (error) onError(error, local);
        },
        dataSends: 0,
      });
    }
    return new UdpEndpoint(bound, failures);
  }

  /** The bound address of each socket, in the order of `options.addresses` (minus skipped failures). */
  /** The buffer sizes the kernel granted each socket (SO_RCVBUF, SO_SNDBUF), bytes. */
  bufferSizes(): { readonly local: TransportAddress; readonly recv: number; readonly send: number }[] {
    return this.#sockets.map((b) => ({ local: b.local, recv: b.socket.getRecvBufferSize(), send: b.socket.getSendBufferSize() }));
  }

  get addresses(): readonly TransportAddress[] {
    return this.#sockets.map((b) => b.local);
  }

  /** Addresses that could not be bound (only non-empty with `onBindError: 'skip'`). */
  get failures(): readonly IcewireError[] {
    return this.#failures;
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Sends `datagram.data` to `datagram.remote` from the socket bound to `datagram.local`. Failures go to `onError`
   * (for application data, a sample of them: see {@link DATA_CALLBACK_EVERY}).
   * @throws InvalidStateError after `close()`, when no socket is bound to `datagram.local`, or for a non-UDP
   *   datagram.
   */
  send(datagram: Datagram): void {
    if (this.#closing !== undefined) throw new InvalidStateError('UdpEndpoint.send() after close()');
    if (datagram.transport !== undefined && datagram.transport !== 'udp') {
      throw new InvalidStateError(`UdpEndpoint cannot send a ${datagram.transport} datagram`);
    }
    const b = this.#socketFor(datagram.local);
    const data = datagram.data;
    if (isDataByte(data[0] ?? 0) && b.dataSends++ % DATA_CALLBACK_EVERY !== 0) b.socket.send(data, datagram.remote.port, datagram.remote.address);
    else b.socket.send(data, datagram.remote.port, datagram.remote.address, b.onSent);
  }

  /**
   * The socket bound to `local`. The agent sends from the very address objects {@link addresses} returned (its
   * candidate bases), so an identity match over the few sockets avoids canonicalising and keying per datagram.
   */
  #socketFor(local: TransportAddress): Bound {
    const sockets = this.#sockets;
    for (let i = 0; i < sockets.length; i++) if (sockets[i]!.local === local) return sockets[i]!;
    const b = this.#byLocal.get(keyOf(local));
    if (b === undefined) throw new InvalidStateError(`no UDP socket bound to ${formatAddress(local)}`);
    return b;
  }

  /**
   * Closes the sockets bound to `locals` (a component the agent dropped); the others keep running. Unknown
   * addresses are ignored. Resolves once their handles are released.
   */
  async closeSockets(locals: readonly TransportAddress[]): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    const keys = new Set(locals.map(keyOf));
    const gone = this.#sockets.filter((b) => keys.has(keyOf(b.local)));
    if (gone.length === 0) return;
    this.#sockets = this.#sockets.filter((b) => !keys.has(keyOf(b.local)));
    for (const b of gone) this.#byLocal.delete(keyOf(b.local));
    await Promise.all(gone.map((b) => closeSocket(b.socket)));
    await handlesReleased();
  }

  /**
   * Closes every socket; resolves once all are closed and their handles released (so
   * `process.getActiveResourcesInfo()` no longer lists them). Idempotent: later calls return the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#sockets.map((b) => closeSocket(b.socket))).then(handlesReleased);
    return this.#closing;
  }
}
