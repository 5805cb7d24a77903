/**
 * Node edge of the TURN client: connects a sans-IO `TurnClient` to a real UDP socket (node:dgram), TCP connection
 * (node:net) or TLS connection (node:tls) and feeds stream bytes through the `StreamFramer`; a {@link MachineDriver}
 * runs its drain loop and timers, as for every machine of the edge. `openTurnAllocation` is the promise-shaped
 * convenience used by tests and the bench; `connectTurnStream` also serves the agent's TURN-over-TCP/TLS edge.
 * @module
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as netConnect, type Socket as TcpSocket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { IcewireError, TurnError } from '../errors.js';
import { ipFamily } from '../ip.js';
import { StreamFramer } from '../turnclient/channel-data.js';
import { TurnClient, type TurnClientEvent, type TurnClientOptions, type TurnTransport } from '../turnclient/turn-client.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { MachineDriver } from './driver.js';
import { cryptoRandom } from './random.js';

/** Options of `openTurnAllocation`: the TurnClient options minus what the edge supplies, plus socket settings. */
export interface TurnAllocationOptions
  extends Omit<TurnClientOptions, 'local' | 'random' | 'transport'> {
  readonly transport?: TurnTransport;
  /** Local IP to bind/connect from (default: the unspecified address of the server's family). */
  readonly localAddress?: string;
  /** TLS: trusted CA certificates (PEM), e.g. a self-signed test certificate. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** TLS: verify the server certificate (default true). */
  readonly rejectUnauthorized?: boolean;
  /** TLS: SNI / name to verify (default: the server address). */
  readonly servername?: string;
  /** Give up if no allocation within this many ms (default 15000). */
  readonly timeoutMs?: number;
  /** Randomness (default crypto). */
  readonly random?: RandomSource;
}

/** A live allocation. */
export interface TurnAllocation {
  readonly client: TurnClient;
  readonly relayed: readonly TransportAddress[];
  readonly mapped: TransportAddress | undefined;
  readonly lifetimeSec: number;
  /** The local address of the socket or connection (the base). */
  readonly local: TransportAddress;
  /** Sends to a peer through the relay (see TurnClient.send for the permission/channel policy). */
  send(peer: TransportAddress, data: Uint8Array): void;
  /** Subscribes to relayed data; returns an unsubscribe function. */
  onData(cb: (peer: TransportAddress, data: Uint8Array) => void): () => void;
  /** Subscribes to every TurnClient event; returns an unsubscribe function. */
  onEvent(cb: (event: TurnClientEvent) => void): () => void;
  /** Installs a permission; resolves when the server confirmed it. */
  createPermission(peerIp: string): Promise<void>;
  /** Binds a channel; resolves with the number once the server confirmed it. */
  bindChannel(peer: TransportAddress): Promise<number>;
  /** Deletes the allocation (bounded wait for the server's answer) and closes the socket. */
  close(): Promise<void>;
}

/**
 * Runs one TurnClient over one socket or connection. The client's drain loop and timers are a {@link MachineDriver}'s,
 * as for every other machine of the edge: this class only moves bytes and follows redirects.
 */
class TurnDriver {
  readonly client: TurnClient;
  readonly driver: MachineDriver;
  readonly #listeners = new Set<(e: TurnClientEvent) => void>();
  readonly #options: TurnAllocationOptions;
  readonly #transport: TurnTransport;
  #udp: UdpSocket | undefined;
  #stream: TcpSocket | undefined;

  constructor(options: TurnAllocationOptions, local: TransportAddress, socket: { udp?: UdpSocket; stream?: TcpSocket }) {
    this.#options = options;
    this.#transport = options.transport ?? 'udp';
    const { transport: _t, localAddress: _l, ca: _c, rejectUnauthorized: _r, servername: _s, timeoutMs: _m, random, ...rest } = options;
    this.client = new TurnClient({ ...rest, transport: this.#transport, local, random: random ?? cryptoRandom });
    this.driver = new MachineDriver({ send: (d) => this.#send(d) });
    if (socket.udp) this.#attachUdp(socket.udp, local);
    if (socket.stream) this.#attachStream(socket.stream, local);
    this.driver.attach(this.client, (e) => {
      if (e.type === 'redirect' && this.#transport !== 'udp') void this.#reconnect(e.server, e.domain);
      for (const l of [...this.#listeners]) l(e);
    });
  }

  now(): number {
    return this.driver.now();
  }

  on(cb: (e: TurnClientEvent) => void): () => void {
    this.#listeners.add(cb);
    return () => this.#listeners.delete(cb);
  }

  /** Drains after a command given to the client. */
  kick(): void {
    this.driver.kick(this.client);
  }

  #send(d: Datagram): void {
    if (this.#udp) this.#udp.send(d.data, d.remote.port, d.remote.address);
    else if (this.#stream && !this.#stream.destroyed) this.#stream.write(d.data);
  }

  #attachUdp(udp: UdpSocket, local: TransportAddress): void {
    this.#udp = udp;
    udp.on('message', (msg, rinfo) => {
      this.driver.receive({ local, remote: { address: rinfo.address, port: rinfo.port }, data: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength) });
    });
    udp.on('error', () => {
      // A UDP socket error (e.g. ICMP port unreachable surfaced by the OS) is not fatal: transactions time out.
    });
  }

  #attachStream(stream: TcpSocket, local: TransportAddress): void {
    this.#stream = stream;
    const framer = new StreamFramer();
    const transport = this.#transport;
    stream.on('data', (chunk: Buffer) => {
      if (this.#stream !== stream) return;
      for (const data of framer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
        this.driver.receive({ local, remote: this.client.server, data, transport });
      }
      if (framer.error) stream.destroy();
    });
    stream.on('error', () => {});
    stream.on('close', () => {
      if (this.#stream !== stream) return;
      this.#stream = undefined;
      this.client.connectionClosed(this.now());
      this.kick();
    });
  }

  async #reconnect(server: TransportAddress, domain: string | undefined): Promise<void> {
    const old = this.#stream;
    this.#stream = undefined;
    old?.destroy();
    try {
      // RFC 8489 §10: with TLS, check the new server's certificate against ALTERNATE-DOMAIN when given, else
      // against the name used for the original server.
      const options = domain !== undefined ? { ...this.#options, servername: domain } : this.#options;
      const { stream, local } = await connectStream(this.#transport, server, options);
      this.#attachStream(stream, local);
      this.client.redirectConnected(this.now(), local);
    } catch {
      this.client.connectionClosed(this.now());
    }
    this.kick();
  }

  shutdown(): void {
    this.driver.close();
    this.#udp?.close();
    this.#udp = undefined;
    const s = this.#stream;
    this.#stream = undefined;
    s?.destroy();
  }
}

/** TLS settings for a connection to a TURN server (`turns:`). */
export interface TurnTlsOptions {
  /** Trusted CA certificates (PEM), e.g. a self-signed test certificate. Default: Node's bundled CAs. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  /** Verify the server certificate (default true). */
  readonly rejectUnauthorized?: boolean;
  /** SNI and the name the certificate must carry (default: the server address, checked against its IP SANs). */
  readonly servername?: string;
}

/** Options of {@link connectTurnStream}. */
export interface TurnStreamConnectOptions extends TurnTlsOptions {
  /** Local IP to connect from (default: chosen by the OS). */
  readonly localAddress?: string;
  /** Give up when not connected (TCP, and the TLS handshake) within this many ms. Default: no bound of our own. */
  readonly connectTimeoutMs?: number;
  /** Aborts the attempt. */
  readonly signal?: AbortSignal;
}

/**
 * Opens a TCP or TLS-over-TCP connection to a TURN server (RFC 8656 §3.1) and resolves with the socket and its
 * local address once it is ready (after the TLS handshake for `'tls'`). Rejects with a `TurnError`
 * (`connection-closed`) on failure, time-out or abort, and only after the socket is fully closed, so a failed
 * attempt leaves no handle behind.
 */
export async function connectTurnStream(
  transport: 'tcp' | 'tls',
  server: TransportAddress,
  options: TurnStreamConnectOptions = {},
): Promise<{ stream: TcpSocket; local: TransportAddress }> {
  return await new Promise((resolve, reject) => {
    const fail = (why: string, cause?: unknown): void => {
      const error = new TurnError(0, 'connection-closed', `cannot connect to TURN server ${server.address}:${server.port}: ${why}`, cause === undefined ? undefined : { cause });
      cleanup();
      if (closeSeen) reject(error);
      else {
        stream.once('close', () => reject(error));
        stream.destroy();
      }
    };
    if (options.signal?.aborted) {
      reject(new TurnError(0, 'connection-closed', `connection to TURN server ${server.address}:${server.port} aborted`));
      return;
    }
    const base = { host: server.address, port: server.port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) };
    const stream: TcpSocket =
      transport === 'tls'
        ? tlsConnect({
            ...base,
            ...(options.ca !== undefined ? { ca: options.ca as string | Buffer | (string | Buffer)[] } : {}),
            rejectUnauthorized: options.rejectUnauthorized ?? true,
            // Node refuses SNI for IP literals; verification still checks the IP SAN against `host`.
            ...(options.servername !== undefined ? { servername: options.servername } : {}),
          })
        : netConnect(base);
    stream.setNoDelay(true);
    let closeSeen = false;
    stream.once('close', () => (closeSeen = true));
    const ready = transport === 'tls' ? 'secureConnect' : 'connect';
    const onError = (e: Error): void => fail(e.message, e);
    const onAbort = (): void => fail('aborted');
    const timer =
      options.connectTimeoutMs !== undefined ? setTimeout(() => fail(`no connection within ${options.connectTimeoutMs} ms`), options.connectTimeoutMs) : undefined;
    const cleanup = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      stream.off('error', onError);
      stream.off(ready, onReady);
      options.signal?.removeEventListener('abort', onAbort);
      // Errors after the failure (or after resolve, before the caller attaches its own handler) must not throw.
      stream.on('error', () => {});
    };
    const onReady = (): void => {
      cleanup();
      resolve({ stream, local: { address: stream.localAddress!, port: stream.localPort! } });
    };
    stream.once('error', onError);
    stream.once(ready, onReady);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function connectStream(
  transport: TurnTransport,
  server: TransportAddress,
  options: TurnAllocationOptions,
): Promise<{ stream: TcpSocket; local: TransportAddress }> {
  return await connectTurnStream(transport === 'tls' ? 'tls' : 'tcp', server, {
    ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.rejectUnauthorized !== undefined ? { rejectUnauthorized: options.rejectUnauthorized } : {}),
    ...(options.servername !== undefined ? { servername: options.servername } : {}),
  });
}

async function bindUdp(server: TransportAddress, localAddress: string | undefined): Promise<{ udp: UdpSocket; local: TransportAddress }> {
  const v6 = ipFamily(server.address) === 6;
  const udp = createSocket(v6 ? 'udp6' : 'udp4');
  const address = localAddress ?? (v6 ? '::' : '0.0.0.0');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, address, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  const a = udp.address();
  return { udp, local: { address: a.address, port: a.port } };
}

/**
 * Opens a socket or connection to the TURN server and creates an allocation. Rejects with the `TurnError` the
 * client reported (401 wrong credentials, 403, 437, 486, 508, 408 time-out, ...) or on `timeoutMs`.
 */
export async function openTurnAllocation(options: TurnAllocationOptions): Promise<TurnAllocation> {
  const transport = options.transport ?? 'udp';
  let driver: TurnDriver;
  if (transport === 'udp') {
    const { udp, local } = await bindUdp(options.server, options.localAddress);
    driver = new TurnDriver(options, local, { udp });
  } else {
    const { stream, local } = await connectStream(transport, options.server, options);
    driver = new TurnDriver(options, local, { stream });
  }
  const client = driver.client;
  const timeoutMs = options.timeoutMs ?? 15_000;
  let allocated: Extract<TurnClientEvent, { type: 'allocated' }>;
  try {
    allocated = await new Promise((resolve, reject) => {
      let off = (): void => {};
      const t = setTimeout(() => {
        off();
        reject(new TurnError(408, 'timeout', `no allocation within ${timeoutMs} ms`));
      }, timeoutMs);
      off = driver.on((e) => {
        if (e.type === 'allocated') {
          clearTimeout(t);
          off();
          resolve(e);
        } else if (e.type === 'error' && e.fatal) {
          clearTimeout(t);
          off();
          reject(e.error);
        }
      });
      client.allocate(driver.now());
      driver.kick();
    });
  } catch (e) {
    driver.shutdown();
    throw e;
  }

  const dataListeners = new Set<(peer: TransportAddress, data: Uint8Array) => void>();
  driver.on((e) => {
    if (e.type === 'data') for (const l of [...dataListeners]) l(e.peer, e.data);
  });

  const waitFor = <T>(match: (e: TurnClientEvent) => T | undefined, fail: (e: TurnClientEvent) => IcewireError | undefined, ms: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      let off = (): void => {};
      const t = setTimeout(() => {
        off();
        reject(new TurnError(408, 'timeout', `no answer within ${ms} ms`));
      }, ms);
      off = driver.on((e) => {
        const v = match(e);
        if (v !== undefined) {
          clearTimeout(t);
          off();
          resolve(v);
          return;
        }
        const err = fail(e);
        if (err) {
          clearTimeout(t);
          off();
          reject(err);
        }
      });
    });

  return {
    client,
    relayed: allocated.relayed,
    mapped: allocated.mapped,
    lifetimeSec: allocated.lifetimeSec,
    local: client.local,
    send(peer, data) {
      client.send(driver.now(), peer, data);
      driver.kick();
    },
    onData(cb) {
      dataListeners.add(cb);
      return () => dataListeners.delete(cb);
    },
    onEvent(cb) {
      return driver.on(cb);
    },
    createPermission(peerIp) {
      const p = waitFor(
        (e) => (e.type === 'permission' && e.peerIp === peerIp ? true : undefined),
        (e) => (e.type === 'error' && (e.fatal || (e.operation === 'permission' && e.peer?.address === peerIp)) ? e.error : undefined),
        timeoutMs,
      ).then(() => undefined);
      client.createPermission(driver.now(), peerIp);
      driver.kick();
      return p;
    },
    bindChannel(peer) {
      const existing = client.channelFor(peer);
      if (existing !== undefined) return Promise.resolve(existing);
      let number = -1;
      const p = waitFor(
        (e) => (e.type === 'channel' && e.channel === number ? e.channel : undefined),
        (e) => (e.type === 'error' && (e.fatal || (e.operation === 'channel' && e.peer?.port === peer.port && e.peer.address === peer.address)) ? e.error : undefined),
        timeoutMs,
      );
      number = client.bindChannel(driver.now(), peer);
      driver.kick();
      return p;
    },
    async close() {
      if (client.state !== 'closed') {
        const done = waitFor((e) => (e.type === 'closed' ? true : undefined), () => undefined, 3000).catch(() => undefined);
        client.close(driver.now());
        driver.kick();
        await done;
      }
      driver.shutdown();
    },
  };
}
