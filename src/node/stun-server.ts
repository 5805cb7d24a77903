/**
 * The Node UDP edge of {@link StunBindingServer}: `node:dgram` sockets, every datagram handed to the sans-IO server
 * and every response sent from the socket it names. One socket for a plain server; four (two addresses x two ports)
 * for an RFC 5780 server. For tests, demos and small deployments; it has no default address beyond loopback.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { StunBindingServer, type StunBindingServerOptions, type StunBindingServerStats } from '../stun/binding-server.js';
import { canonicalIp, ipFamily } from '../ip.js';
import type { TransportAddress } from '../types.js';

/** Options of {@link startStunServer}. */
export interface StartStunServerOptions extends Omit<StunBindingServerOptions, 'rfc5780'> {
  /** Address to bind: an IPv4 or IPv6 literal. Default `'127.0.0.1'`. */
  readonly address?: string;
  /** UDP port; 0 (default) picks a free one. */
  readonly port?: number;
  /**
   * Serve RFC 5780 NAT behaviour discovery: the second address (same family as `address`) and, optionally, the
   * second port (0 or absent picks one free on both addresses). The server then listens on both ports of both
   * addresses.
   */
  readonly alternate?: { readonly address: string; readonly port?: number };
}

/** A running STUN server. */
export interface RunningStunServer {
  /** The bound address. */
  readonly address: string;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /** The second address and port when serving RFC 5780 (OTHER-ADDRESS), else undefined. */
  readonly alternate: TransportAddress | undefined;
  /** The server's counters, a fresh snapshot on each read, plus `sendErrors` from the socket. */
  readonly stats: StunBindingServerStats & { readonly sendErrors: number };
  /** Closes the sockets. Resolves once they are closed; safe to call twice. */
  close(): Promise<void>;
}

const key = (a: TransportAddress) => `${canonicalIp(a.address)}|${a.port}`;

// Binds one UDP socket; IPv6 sockets IPv6-only, so `::1` and `127.0.0.1` servers can run side by side.
function bindUdp(address: string, port: number): Promise<Socket> {
  const v6 = ipFamily(address) === 6;
  const socket: Socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
  return new Promise<Socket>((resolve, reject) => {
    const onError = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

const closeAll = (sockets: readonly Socket[]) => Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));

// One port bound on both addresses: `port`, or (when 0) the first of a few the OS offers on `a1` that `a2` has free.
async function bindPair(a1: string, a2: string, port: number): Promise<[Socket, Socket]> {
  for (let attempt = 0; ; attempt++) {
    const s1 = await bindUdp(a1, port);
    try {
      return [s1, await bindUdp(a2, s1.address().port)];
    } catch (e) {
      await closeAll([s1]);
      if (port !== 0 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw e;
    }
  }
}

/**
 * Binds UDP and answers STUN Binding requests (RFC 8489 §6.3); with `alternate`, NAT behaviour discovery too
 * (RFC 5780 §6), listening on both ports of both addresses.
 *
 * @throws (rejects with) a RangeError for an `alternate` the server cannot use (see `StunBindingServerOptions`), or
 * the sockets' bind error, e.g. `EADDRNOTAVAIL` when `::1` is not configured.
 */
export async function startStunServer(options: StartStunServerOptions = {}): Promise<RunningStunServer> {
  const address = options.address ?? '127.0.0.1';
  const alt = options.alternate;
  if (alt !== undefined) {
    if (ipFamily(alt.address) === 0 || ipFamily(alt.address) !== ipFamily(address)) throw new RangeError('alternate.address must be an IP literal of the same family as address');
    if (canonicalIp(alt.address) === canonicalIp(address)) throw new RangeError('alternate.address must differ from address');
    if (alt.port !== undefined && alt.port !== 0 && alt.port === options.port) throw new RangeError('alternate.port must differ from port');
  }
  const sockets: Socket[] = [];
  let alternate: TransportAddress | undefined;
  if (alt === undefined) {
    sockets.push(await bindUdp(address, options.port ?? 0));
  } else {
    const p1 = await bindPair(address, alt.address, options.port ?? 0);
    try {
      sockets.push(...p1, ...(await bindPair(address, alt.address, alt.port ?? 0)));
    } catch (e) {
      await closeAll(p1);
      throw e;
    }
    alternate = { address: alt.address, port: sockets[2]!.address().port };
  }
  const first = sockets[0]!.address();
  const local: TransportAddress = { address: first.address, port: first.port };
  let server: StunBindingServer;
  try {
    server = new StunBindingServer({ ...options, ...(alternate ? { rfc5780: { primary: local, alternate } } : {}) });
  } catch (e) {
    await closeAll(sockets);
    throw e;
  }
  let sendErrors = 0;
  const byLocal = new Map<string, Socket>();
  for (const socket of sockets) {
    const bound = socket.address();
    const at: TransportAddress = { address: bound.address, port: bound.port };
    byLocal.set(key(at), socket);
    // After bind, socket errors (e.g. ICMP-triggered) must not crash the process: count them.
    socket.on('error', () => {
      sendErrors++;
    });
    socket.on('message', (msg, rinfo) => {
      server.handleReceive(performance.now(), {
        local: at,
        remote: { address: rinfo.address, port: rinfo.port },
        data: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
      });
      for (let t = server.pollTransmit(); t !== undefined; t = server.pollTransmit()) {
        (byLocal.get(key(t.local)) ?? socket).send(t.data, t.remote.port, t.remote.address, (err) => {
          if (err) sendErrors++;
        });
      }
    });
  }

  let closed: Promise<void> | undefined;
  return {
    address: local.address,
    port: local.port,
    alternate,
    get stats() {
      return { ...server.stats, sendErrors };
    },
    close() {
      closed ??= closeAll(sockets).then(() => undefined);
      return closed;
    },
  };
}
