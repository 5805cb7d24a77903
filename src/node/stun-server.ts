/**
 * The Node UDP edge of {@link StunBindingServer}: one `node:dgram` socket, every datagram handed to the sans-IO
 * server and every response sent back. For tests, demos and small deployments; it has no default address beyond
 * loopback.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { StunBindingServer, type StunBindingServerOptions, type StunBindingServerStats } from '../stun/binding-server.js';
import { ipFamily } from '../ip.js';
import type { TransportAddress } from '../types.js';

/** Options of {@link startStunServer}. */
export interface StartStunServerOptions extends StunBindingServerOptions {
  /** Address to bind: an IPv4 or IPv6 literal. Default `'127.0.0.1'`. */
  readonly address?: string;
  /** UDP port; 0 (default) picks a free one. */
  readonly port?: number;
}

/** A running STUN server. */
export interface RunningStunServer {
  /** The bound address. */
  readonly address: string;
  /** The bound port (the real one when 0 was asked). */
  readonly port: number;
  /** The server's counters, a fresh snapshot on each read, plus `sendErrors` from the socket. */
  readonly stats: StunBindingServerStats & { readonly sendErrors: number };
  /** Closes the socket. Resolves once it is closed; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Binds a UDP socket and answers STUN Binding requests on it (RFC 8489 §6.3). IPv6 sockets are bound IPv6-only, so
 * `::1` and `127.0.0.1` servers can run side by side.
 *
 * @throws (rejects with) the socket's bind error, e.g. `EADDRNOTAVAIL` when `::1` is not configured.
 */
export async function startStunServer(options: StartStunServerOptions = {}): Promise<RunningStunServer> {
  const address = options.address ?? '127.0.0.1';
  const v6 = ipFamily(address) === 6;
  const server = new StunBindingServer(options);
  const socket: Socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
  let sendErrors = 0;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port: options.port ?? 0, exclusive: true }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
  // After bind, socket errors (e.g. ICMP-triggered) must not crash the process: count them.
  socket.on('error', () => {
    sendErrors++;
  });

  const bound = socket.address();
  const local: TransportAddress = { address: bound.address, port: bound.port };
  socket.on('message', (msg, rinfo) => {
    server.handleReceive(performance.now(), {
      local,
      remote: { address: rinfo.address, port: rinfo.port },
      data: new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength),
    });
    for (let t = server.pollTransmit(); t !== undefined; t = server.pollTransmit()) {
      socket.send(t.data, t.remote.port, t.remote.address, (err) => {
        if (err) sendErrors++;
      });
    }
  });

  let closed: Promise<void> | undefined;
  return {
    address: local.address,
    port: local.port,
    get stats() {
      return { ...server.stats, sendErrors };
    },
    close() {
      closed ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closed;
    },
  };
}
