/**
 * The ICE-TCP edge (RFC 6544) next to `udp-endpoint.ts`: listening sockets for passive candidates, connections the
 * agent asks for with `tcp-connect` (from an active candidate's interface, any port, RFC 6544 §7.1), and the bytes
 * of every connection handed to the machine as datagrams with `transport: 'tcp'` on the connection's 5-tuple. The
 * machine frames and deframes (RFC 4571); this edge only moves bytes, and tells the machine what became of each
 * connection. Sockets are closed when the machine says `tcp-close`, and all of them on `close()`.
 * @module
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { canonicalIp } from '../ip.js';
import type { Datagram, TransportAddress } from '../types.js';

/** Bytes allowed to wait in one connection's write buffer; beyond it datagrams are dropped, as a full UDP socket would. */
export const MAX_TCP_BACKLOG = 4 * 1024 * 1024;

/** How long `close()` waits for sockets to finish closing. */
const CLOSE_WAIT_MS = 2000;

/** What the machine answers and is told (`AgentMachine`'s ICE-TCP methods). */
export interface TcpEndpointOptions {
  /** Addresses to listen on (one server each, any free port). */
  readonly listen: readonly string[];
  /** Bound on an outgoing connection attempt, ms. */
  readonly connectTimeoutMs: number;
  /** Bytes of a connection. */
  readonly onData: (datagram: Datagram) => void;
  /** A connection was accepted: the machine's id for it, or undefined to refuse (closed at once). */
  readonly onAccepted: (local: TransportAddress, remote: TransportAddress) => string | undefined;
  /** The connection a `tcp-connect` asked for is open: false closes it. */
  readonly onConnected: (id: string, local: TransportAddress) => boolean;
  /** It could not be opened. */
  readonly onConnectFailed: (id: string) => void;
  /** An open connection closed by itself (the peer, a reset). */
  readonly onClosed: (id: string) => void;
  readonly onError?: (error: unknown) => void;
}

/** Counters. */
export interface TcpEndpointStats {
  accepted: number;
  refused: number;
  connects: number;
  connectFailures: number;
  /** Writes dropped: no such connection, or its buffer was over {@link MAX_TCP_BACKLOG}. */
  dropped: number;
}

interface Conn {
  readonly id: string;
  socket: Socket;
  key: string | undefined;
  open: boolean;
  /** The 5-tuple once open (the send path compares these fields before building a key). */
  local?: TransportAddress;
  remote?: TransportAddress;
}

const keyOf = (local: TransportAddress, remote: TransportAddress): string =>
  `${canonicalIp(local.address)}|${local.port}|${canonicalIp(remote.address)}|${remote.port}`;

function addressOf(address: string | undefined, port: number | undefined): TransportAddress {
  return { address: canonicalIp((address ?? '').replace(/^::ffff:(?=\d+\.)/, '')), port: port ?? 0 };
}

/** Listening sockets and connections of one agent. */
export class TcpEndpoint {
  readonly #options: TcpEndpointOptions;
  #servers: Server[];
  readonly #byId = new Map<string, Conn>();
  readonly #byKey = new Map<string, Conn>();
  readonly #sockets = new Set<Socket>();
  #closed = false;
  readonly stats: TcpEndpointStats = { accepted: 0, refused: 0, connects: 0, connectFailures: 0, dropped: 0 };
  /** The listening addresses, in the order of `options.listen` (less those closed by `closeListeners`). */
  addresses: readonly TransportAddress[];

  private constructor(options: TcpEndpointOptions, servers: Server[], addresses: TransportAddress[]) {
    this.#options = options;
    this.#servers = servers;
    this.addresses = addresses;
    for (const s of servers) s.on('connection', (socket) => this.#accept(socket));
  }

  /** Opens one listening socket per address (port chosen by the system). Rejects, closing what it opened, on failure. */
  static async listen(options: TcpEndpointOptions): Promise<TcpEndpoint> {
    const { servers, addresses } = await listenAll(options.listen, 0);
    return new TcpEndpoint(options, servers, addresses);
  }

  /** Open connections and attempts in progress. */
  get size(): number {
    return this.#byId.size;
  }

  /** The connection of the last transmit (media keeps to one). */
  #last: Conn | undefined;

  /** The open connection of a transmit's 5-tuple, or undefined. */
  #find(d: Datagram): Conn | undefined {
    const c = this.#last;
    if (
      c !== undefined &&
      c.open &&
      c.local !== undefined &&
      c.remote !== undefined &&
      c.local.port === d.local.port &&
      c.remote.port === d.remote.port &&
      c.remote.address === d.remote.address &&
      c.local.address === d.local.address &&
      this.#byId.get(c.id) === c
    ) {
      return c;
    }
    const found = this.#byKey.get(keyOf(d.local, d.remote));
    if (found !== undefined) this.#last = found;
    return found;
  }

  /** Whether a TCP transmit belongs to one of these connections. */
  owns(d: Datagram): boolean {
    return this.#find(d) !== undefined;
  }

  /** Handles the machine's `tcp-connect` and `tcp-close` events. */
  handleEvent(e: { readonly type: 'tcp-connect' | 'tcp-close'; readonly id: string; readonly local: TransportAddress; readonly remote: TransportAddress }): void {
    if (e.type === 'tcp-close') this.#drop(e.id);
    else this.#connect(e.id, e.local, e.remote);
  }

  /** Writes a transmit (`transport: 'tcp'`, already framed by the machine); false when dropped. */
  send(d: Datagram): boolean {
    const conn = this.#find(d);
    const s = conn?.socket;
    if (conn === undefined || !conn.open || s === undefined || !s.writable || s.writableLength > MAX_TCP_BACKLOG) {
      this.stats.dropped++;
      return false;
    }
    s.write(d.data);
    return true;
  }

  /**
   * Closes the listening sockets on `locals` (the passive bases of a dropped component; other addresses are
   * ignored). Their connections are the machine's to close (`tcp-close`). Resolves once they stopped listening.
   */
  async closeListeners(locals: readonly TransportAddress[]): Promise<void> {
    const keys = new Set(locals.map((a) => `${canonicalIp(a.address)}|${a.port}`));
    const gone: Server[] = [];
    const servers: Server[] = [];
    const addresses: TransportAddress[] = [];
    this.#servers.forEach((server, i) => {
      const a = this.addresses[i]!;
      if (keys.has(`${a.address}|${a.port}`)) gone.push(server);
      else (servers.push(server), addresses.push(a));
    });
    if (gone.length === 0) return;
    this.#servers = servers;
    this.addresses = addresses;
    await Promise.all(gone.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }

  /** Closes every connection and listening socket; resolves once they are closed (bounded). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of [...this.#byId.keys()]) this.#drop(id);
    const waits: Promise<void>[] = [];
    for (const s of this.#servers) waits.push(new Promise<void>((r) => (s.listening ? s.close(() => r()) : r())));
    for (const s of this.#sockets) {
      s.destroy();
      if (!s.closed) waits.push(new Promise<void>((r) => s.once('close', () => r())));
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(waits), new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.setNoDelay(true);
  }

  /**
   * Takes a connection another listener accepted (an `IceTcpMux`), with the bytes it already read from it, as if this
   * endpoint had accepted it: the machine is asked (`onAccepted`), then given those bytes. False when refused (closed).
   */
  adopt(socket: Socket, bytes: Uint8Array): boolean {
    const conn = this.#accept(socket);
    if (conn === undefined || this.#byId.get(conn.id) !== conn) return false;
    this.#options.onData({ local: conn.local!, remote: conn.remote!, data: bytes, transport: 'tcp' });
    return true;
  }

  #accept(socket: Socket): Conn | undefined {
    this.#track(socket);
    if (this.#closed) return void socket.destroy();
    const local = addressOf(socket.localAddress, socket.localPort);
    const remote = addressOf(socket.remoteAddress, socket.remotePort);
    let id: string | undefined;
    try {
      id = this.#options.onAccepted(local, remote);
    } catch (error) {
      this.#options.onError?.(error);
    }
    if (id === undefined) {
      this.stats.refused++;
      socket.destroy();
      return undefined;
    }
    this.stats.accepted++;
    const conn: Conn = { id, socket, key: keyOf(local, remote), open: true };
    this.#byId.set(id, conn);
    this.#byKey.set(conn.key!, conn);
    this.#wire(conn, local, remote);
    return conn;
  }

  #connect(id: string, local: TransportAddress, remote: TransportAddress): void {
    if (this.#closed) return;
    this.#drop(id);
    this.stats.connects++;
    const socket = connect({
      host: remote.address,
      port: remote.port,
      localAddress: local.address,
      ...(local.port !== 0 ? { localPort: local.port } : {}),
      noDelay: true,
    });
    this.#track(socket);
    const conn: Conn = { id, socket, key: undefined, open: false };
    this.#byId.set(id, conn);
    const timer = setTimeout(() => socket.destroy(new Error('connect timeout')), this.#options.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      if (this.#byId.get(id) !== conn) return;
      const l = addressOf(socket.localAddress, socket.localPort);
      conn.open = true;
      conn.key = keyOf(l, remote);
      this.#byKey.set(conn.key, conn);
      this.#wire(conn, l, remote);
      let wanted = false;
      try {
        wanted = this.#options.onConnected(id, l);
      } catch (error) {
        this.#options.onError?.(error);
      }
      if (!wanted) this.#drop(id);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (this.#byId.get(id) !== conn || conn.open) return; // an open one reports in #wire
      this.#byId.delete(id);
      this.stats.connectFailures++;
      this.#options.onConnectFailed(id);
    });
    socket.on('error', () => {
      // 'close' follows.
    });
  }

  #wire(conn: Conn, local: TransportAddress, remote: TransportAddress): void {
    const socket = conn.socket;
    conn.local = local;
    conn.remote = remote;
    socket.on('data', (chunk: Buffer) => {
      if (this.#byId.get(conn.id) !== conn) return;
      this.#options.onData({ local, remote, data: new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), transport: 'tcp' });
    });
    socket.on('error', () => {
      // 'close' follows.
    });
    socket.on('close', () => {
      if (this.#byId.get(conn.id) !== conn) return;
      this.#forget(conn);
      this.#options.onClosed(conn.id);
    });
  }

  /** Forgets and closes a connection without reporting it. */
  #drop(id: string): void {
    const conn = this.#byId.get(id);
    if (conn === undefined) return;
    this.#forget(conn);
    conn.socket.destroy();
  }

  #forget(conn: Conn): void {
    if (this.#byId.get(conn.id) === conn) this.#byId.delete(conn.id);
    if (conn.key !== undefined && this.#byKey.get(conn.key) === conn) this.#byKey.delete(conn.key);
  }
}

/**
 * One listening socket on each address, on `port` (0: one the system picks for each). Rejects, closing what it opened,
 * when one cannot listen (e.g. `EADDRINUSE`).
 */
export async function listenAll(hosts: readonly string[], port: number): Promise<{ servers: Server[]; addresses: TransportAddress[] }> {
  const servers: Server[] = [];
  const addresses: TransportAddress[] = [];
  try {
    for (const address of hosts) {
      const server = createServer({ noDelay: true });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: address, port, ipv6Only: true }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const a = server.address();
      if (a === null || typeof a === 'string') throw new Error('listening socket without an address');
      addresses.push(addressOf(a.address, a.port));
    }
  } catch (error) {
    await Promise.all(servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
    throw error;
  }
  return { servers, addresses };
}
