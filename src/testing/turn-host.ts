/**
 * A TURN server on a virtual host: `addTurnServer` puts the sans-IO `TurnServer` (`turn-server.ts`) on the public
 * network (or any network), listening on one port and relaying from ports of the same host.
 * @module
 */
import { formatAddress, type TransportAddress } from '../types.js';
import { TurnServer, type TurnServerEvent, type TurnServerOptions } from './turn-server.js';
import type { Attachment, Host } from './host.js';
import type { Network } from './network.js';
import type { VirtualNetwork } from './virtual-network.js';

// The server had no file of its own before; re-exported so `icewire/testing` and this module keep their exports.
export * from './turn-server.js';

/** Options of {@link addTurnServer}. */
export interface TurnHostOptions extends Partial<Omit<TurnServerOptions, 'listen' | 'random'>> {
  /** Host name in traces. Default `'turn'`. */
  readonly name?: string;
  /** Network of the host (default public). */
  readonly network?: Network;
  /** Listening IP (default drawn from the network's prefix). */
  readonly address?: string;
  /** Listening port. Default 3478. */
  readonly port?: number;
  /** A second IP on the same host for relayed addresses (e.g. an IPv6 one for dual allocations). */
  readonly relayAddress?: string;
}

/** What {@link addTurnServer} built. */
export interface TurnHost {
  readonly host: Host;
  /** The listening address to give TURN clients. */
  readonly address: TransportAddress;
  readonly server: TurnServer;
  readonly attachment: Attachment<TurnServerEvent>;
  /** Realm and the first configured user, for convenience in tests. */
  readonly realm: string;
  readonly username: string;
  readonly password: string;
}

/**
 * Adds a host running a {@link TurnServer}: listening on `address:port`, relaying from ports of the same host (its
 * listening IP, plus `relayAddress` when given). Credentials default to realm `'icewire.test'`, user `'user'`,
 * password `'pass'`. The server's random source is a fork of the network's generator.
 */
export function addTurnServer(net: VirtualNetwork, options: TurnHostOptions = {}): TurnHost {
  const name = options.name ?? 'turn';
  const host = net.addHost({ name, ...(options.network ? { network: options.network } : {}), ...(options.address ? { address: options.address } : {}) });
  const relayIps = [...host.ips];
  if (options.relayAddress !== undefined) {
    relayIps.unshift(host.addAddress(options.network ?? net.public, options.relayAddress));
  }
  const address = host.address(options.port ?? 3478);
  const realm = options.realm ?? 'icewire.test';
  const users = options.users ?? { user: 'pass' };
  const first = Object.entries(users)[0];
  if (!first) throw new RangeError('addTurnServer needs at least one user');
  const { name: _n, network: _w, address: _a, port: _p, relayAddress: _r, ...rest } = options;
  const server = new TurnServer({
    ...rest,
    listen: address,
    relayIps: options.relayIps ?? relayIps,
    realm,
    users,
    random: net.random.fork(`turn:${name}:${formatAddress(address)}`),
  });
  const attachment = host.attach(server, { name });
  return { host, address, server, attachment, realm, username: first[0], password: first[1] };
}
