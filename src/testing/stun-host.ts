/**
 * A STUN Binding server on a virtual host: `addStunServer` puts H1's sans-IO `StunBindingServer`
 * (`src/stun/binding-server.ts`) on the public network (or any network), listening on one port.
 * @module
 */
import { StunBindingServer, type StunBindingServerEvent, type StunBindingServerOptions } from '../stun/binding-server.js';
import type { TransportAddress } from '../types.js';
import { listenOn } from './endpoint.js';
import type { Attachment, Host } from './host.js';
import type { Network } from './network.js';
import type { VirtualNetwork } from './virtual-network.js';

/** Options of {@link addStunServer}. */
export interface StunHostOptions extends StunBindingServerOptions {
  /** Host name in traces. Default `'stun'`. */
  readonly name?: string;
  /** Network of the host (default public). */
  readonly network?: Network;
  /** IP address (default drawn from the network's prefix). */
  readonly address?: string;
  /** Listening port. Default 3478. */
  readonly port?: number;
  /** Put the server on this existing host instead of creating one (e.g. beside a TURN server). */
  readonly host?: Host;
  /**
   * Serve RFC 5780 NAT behaviour discovery: give the host a second address on the same network (`address`, drawn
   * from the prefix when omitted) and listen on both ports (`port`, default 3479) of both addresses.
   */
  readonly alternate?: { readonly address?: string; readonly port?: number };
}

/** What {@link addStunServer} built. */
export interface StunHost {
  readonly host: Host;
  /** The server address to give STUN clients. */
  readonly address: TransportAddress;
  /** The second address and port (OTHER-ADDRESS) when serving RFC 5780. */
  readonly alternate: TransportAddress | undefined;
  readonly server: StunBindingServer;
  readonly attachment: Attachment<StunBindingServerEvent>;
}

/**
 * Adds a STUN Binding server. It answers Binding requests sent to `address:port` with the source address it sees,
 * so a client behind a NAT learns the NAT's mapping.
 */
export function addStunServer(net: VirtualNetwork, options: StunHostOptions = {}): StunHost {
  const name = options.name ?? 'stun';
  const host =
    options.host ??
    net.addHost({ name, ...(options.network ? { network: options.network } : {}), ...(options.address ? { address: options.address } : {}) });
  const address = host.address(options.port ?? 3478);
  let alternate: TransportAddress | undefined;
  if (options.alternate !== undefined) {
    const network = host.addresses[0]!.network;
    alternate = { address: host.addAddress(network, options.alternate.address), port: options.alternate.port ?? 3479 };
  }
  const server = new StunBindingServer({
    ...(options.software !== undefined ? { software: options.software } : {}),
    ...(options.alwaysFingerprint !== undefined ? { alwaysFingerprint: options.alwaysFingerprint } : {}),
    ...(alternate !== undefined ? { rfc5780: { primary: address, alternate } } : {}),
  });
  // RFC 5780 §6: the same two ports on both addresses.
  const listen = alternate === undefined ? [address] : [address, alternate].flatMap((a) => [address.port, alternate.port].map((port) => ({ address: a.address, port })));
  const attachment = host.attach<StunBindingServerEvent>(listenOn<StunBindingServerEvent>(server, listen), { name });
  return { host, address, alternate, server, attachment };
}
