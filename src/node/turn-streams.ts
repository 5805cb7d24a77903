/**
 * The TCP/TLS connections to TURN servers that an `AgentMachine` asks for (RFC 8656 §3.1: TURN over TCP, or
 * TLS over TCP for `turns:`). The machine runs the allocation; this edge only opens the connection on `turn-connect`,
 * splits the received byte stream into STUN / ChannelData frames with `StreamFramer` and hands each one back as a
 * datagram tagged with the transport, writes the machine's stream transmits to the right connection, and closes the
 * connection on `turn-disconnect` or when the agent closes. Connecting reuses `connectTurnStream` of the TURN
 * client's own Node binding.
 * @module
 */
import type { Socket as TcpSocket } from 'node:net';
import type { TurnStreamEvent } from '../turnclient/allocations.js';
import { canonicalIp, ipFamily } from '../ip.js';
import { StreamFramer } from '../turnclient/channel-data.js';
import type { Datagram, TransportAddress } from '../types.js';
import { connectTurnStream, type TurnTlsOptions } from './turn-transport.js';

export type { TurnTlsOptions };

/** Bytes allowed to wait in one connection's write buffer; beyond it datagrams are dropped, as a full UDP socket would. */
export const MAX_STREAM_BACKLOG = 4 * 1024 * 1024;

/** How long {@link TurnStreams.close} waits for sockets to finish closing. */
const CLOSE_WAIT_MS = 2000;

/** Options of {@link TurnStreams}. */
export interface TurnStreamsOptions {
  /** TLS settings for `turns:` servers (CA, verification, name). */
  readonly tls?: TurnTlsOptions;
  /** Bound on connecting (TCP connect plus TLS handshake), in ms. */
  readonly connectTimeoutMs: number;
  /**
   * The host name a server was configured under, for the TLS certificate check (RFC 8489 §6.2.3: the client MUST
   * verify the server's identity, per RFC 6125), when it was a name rather than an IP literal. `tls.servername`
   * takes precedence.
   */
  readonly serverName?: (server: TransportAddress) => string | undefined;
  /** One frame from a server, as a datagram `{ local: <stream local>, remote: server, data, transport }`. */
  readonly onDatagram: (datagram: Datagram) => void;
  /** Connected: the owner calls `AgentMachine.turnConnected`; returning false closes the connection. */
  readonly onConnected: (id: string, local: TransportAddress) => boolean;
  /** Could not connect: the owner calls `AgentMachine.turnConnectionFailed`. */
  readonly onConnectFailed: (id: string, reason: string) => void;
  /** An open connection closed by itself (server, network, bad framing): the owner calls `turnConnectionClosed`. */
  readonly onClosed: (id: string) => void;
}

/** Counters. */
export interface TurnStreamsStats {
  connects: number;
  connectFailures: number;
  /** Frames handed to the machine. */
  frames: number;
  /** Connections closed because the server's byte stream could not be framed. */
  framingErrors: number;
  /** Transmits dropped: no such connection, or its write buffer was over {@link MAX_STREAM_BACKLOG}. */
  dropped: number;
}

interface Connection {
  readonly id: string;
  readonly server: TransportAddress;
  readonly transport: 'tcp' | 'tls';
  readonly abort: AbortController;
  socket: TcpSocket | undefined;
  key: string | undefined;
}

const streamKey = (transport: string, local: TransportAddress, remote: TransportAddress): string =>
  `${transport}|${canonicalIp(local.address)}|${local.port}|${canonicalIp(remote.address)}|${remote.port}`;

/** The TURN connections of one agent. */
export class TurnStreams {
  readonly #options: TurnStreamsOptions;
  readonly #byId = new Map<string, Connection>();
  readonly #byKey = new Map<string, Connection>();
  /** Every socket or connect attempt not yet fully closed, to wait for on close. */
  readonly #pending = new Set<Promise<void>>();
  #closed = false;
  readonly stats: TurnStreamsStats = { connects: 0, connectFailures: 0, frames: 0, framingErrors: 0, dropped: 0 };

  constructor(options: TurnStreamsOptions) {
    this.#options = options;
  }

  /** Open connections and attempts in progress. */
  get size(): number {
    return this.#byId.size;
  }

  /** Handles the machine's `turn-connect` / `turn-disconnect` events. */
  handleEvent(event: TurnStreamEvent): void {
    if (event.type === 'turn-disconnect') this.disconnect(event.id);
    else this.connect(event);
  }

  /** Opens the connection a `turn-connect` asks for; a second one for the same id (a redirect) replaces the first. */
  connect(event: Extract<TurnStreamEvent, { type: 'turn-connect' }>): void {
    if (this.#closed) return;
    this.#drop(event.id);
    const conn: Connection = { id: event.id, server: event.server, transport: event.transport, abort: new AbortController(), socket: undefined, key: undefined };
    this.#byId.set(event.id, conn);
    const tls = this.#options.tls;
    // RFC 8489 §10: after a redirect the new server's certificate is checked against ALTERNATE-DOMAIN when given.
    const name = event.domain ?? tls?.servername ?? this.#options.serverName?.(event.server);
    this.stats.connects++;
    const attempt = connectTurnStream(event.transport, event.server, {
      // Connect from the base's IP: the same interface (and family) the UDP candidate would use.
      ...(ipFamily(event.base.address) !== 0 ? { localAddress: event.base.address } : {}),
      ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls?.rejectUnauthorized !== undefined ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
      ...(name !== undefined && ipFamily(name) === 0 ? { servername: name } : {}),
      connectTimeoutMs: this.#options.connectTimeoutMs,
      signal: conn.abort.signal,
    });
    const settled = attempt.then(
      ({ stream, local }) => {
        if (this.#byId.get(conn.id) !== conn || this.#closed) {
          this.#track(stream);
          stream.destroy();
          return;
        }
        this.#attach(conn, stream, local);
        if (!this.#options.onConnected(conn.id, local)) this.disconnect(conn.id);
      },
      (error: unknown) => {
        if (this.#byId.get(conn.id) !== conn) return;
        this.#byId.delete(conn.id);
        this.stats.connectFailures++;
        this.#options.onConnectFailed(conn.id, error instanceof Error ? error.message : String(error));
      },
    );
    this.#hold(settled);
  }

  /** Closes the connection of an allocation (no `onClosed` callback). */
  disconnect(id: string): void {
    this.#drop(id);
  }

  /** Writes a stream transmit (`transport` `'tcp'`/`'tls'`) to its connection; false when dropped. */
  send(datagram: Datagram): boolean {
    const conn = this.#byKey.get(streamKey(datagram.transport ?? 'udp', datagram.local, datagram.remote));
    const socket = conn?.socket;
    if (socket === undefined || !socket.writable || socket.writableLength > MAX_STREAM_BACKLOG) {
      this.stats.dropped++;
      return false;
    }
    socket.write(datagram.data);
    return true;
  }

  /** Closes every connection and attempt; resolves once their sockets are closed (bounded). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const id of [...this.#byId.keys()]) this.#drop(id);
    if (this.#pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#pending]),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS))),
    ]);
    clearTimeout(timer);
  }

  #attach(conn: Connection, socket: TcpSocket, local: TransportAddress): void {
    conn.socket = socket;
    conn.key = streamKey(conn.transport, local, conn.server);
    this.#byKey.set(conn.key, conn);
    this.#track(socket);
    const framer = new StreamFramer();
    socket.on('data', (chunk: Buffer) => {
      if (conn.socket !== socket) return;
      const frames = framer.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      for (const data of frames) {
        if (conn.socket !== socket) return; // the machine closed it while taking an earlier frame
        this.stats.frames++;
        this.#options.onDatagram({ local, remote: conn.server, data, transport: conn.transport });
      }
      if (framer.error !== undefined && conn.socket === socket) {
        // A stream that cannot be framed cannot be resynchronised (nothing says where the next frame starts): drop
        // the connection, and with it the allocation.
        this.stats.framingErrors++;
        socket.destroy();
      }
    });
    socket.on('error', () => {
      // 'close' follows; the allocation is reported lost there.
    });
    socket.on('close', () => {
      if (conn.socket !== socket) return;
      this.#forget(conn);
      this.#options.onClosed(conn.id);
    });
  }

  /** Forgets and closes a connection without reporting it. */
  #drop(id: string): void {
    const conn = this.#byId.get(id);
    if (conn === undefined) return;
    this.#forget(conn);
    conn.abort.abort();
    const socket = conn.socket;
    conn.socket = undefined;
    socket?.destroy();
  }

  #forget(conn: Connection): void {
    if (this.#byId.get(conn.id) === conn) this.#byId.delete(conn.id);
    if (conn.key !== undefined && this.#byKey.get(conn.key) === conn) this.#byKey.delete(conn.key);
  }

  /** Remembers a socket until its 'close', so `close()` can wait for it. */
  #track(socket: TcpSocket): void {
    if (socket.closed) return;
    this.#hold(new Promise<void>((resolve) => socket.once('close', () => resolve())));
  }

  #hold(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }
}
