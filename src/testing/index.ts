/**
 * `icewire/testing`: a deterministic virtual network for running ICE (or any sans-IO machine) across NAT topologies
 * in virtual time. A `VirtualNetwork` holds hosts, NATs (RFC 4787 behaviours), a STUN server and a minimal TURN
 * server, moves datagrams between attached machines with seeded delay, jitter, loss and reordering, and records a
 * trace. Same seed, same run.
 *
 * @example
 * ```ts
 * import { VirtualNetwork, NatPresets, addStunServer, addTurnServer } from 'icewire/testing';
 * const net = new VirtualNetwork({ seed: 1 });
 * const stun = addStunServer(net, { address: '198.51.100.1' });
 * const turn = addTurnServer(net, { address: '198.51.100.2' });
 * const natA = net.addNat({ name: 'natA', ...NatPresets.symmetric, publicIp: '203.0.113.1' });
 * const alice = net.addHost({ name: 'alice', network: natA.lan });
 * const a = alice.attach(agentMachine);
 * net.runUntilTrue(() => a.events.some((e) => e.type === 'connected'), 60_000);
 * ```
 * @module
 */
export * from './random.js';
export * from './nat.js';
export * from './virtual-network.js';
export * from './endpoint.js';
export * from './stun-host.js';
export * from './turn-host.js';
