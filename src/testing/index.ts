/**
 * `icewire/testing`: a deterministic virtual network for running ICE (or any sans-IO machine) across NAT topologies
 * in virtual time. A `VirtualNetwork` holds hosts, NATs (RFC 4787 behaviours), a STUN server and a minimal TURN
 * server, moves datagrams between attached machines with seeded delay, jitter, loss and reordering, and records a
 * trace. Same seed, same run.
 *
 * @example
 * ```ts
 * import { AgentMachine, type AgentMachineEvent } from 'icewire/core';
 * import { VirtualNetwork, NatPresets, addStunServer } from 'icewire/testing';
 * const net = new VirtualNetwork({ seed: 1 });
 * const stun = addStunServer(net, { address: '198.51.100.1' });
 * const nat = net.addNat({ name: 'nat', ...NatPresets.symmetric, publicIp: '203.0.113.1' });
 * const alice = net.addHost({ name: 'alice', network: nat.lan });
 * const agent = new AgentMachine({
 *   random: net.random.fork('alice'),
 *   bases: [{ address: { address: alice.addresses[0]!.ip, port: 5000 }, component: 1 }],
 *   stunServers: [stun.address],
 * });
 * const a = alice.attach<AgentMachineEvent>(agent);
 * agent.gather(net.now);
 * net.runUntilTrue(() => a.events.some((e) => e.type === 'gathering-state' && e.state === 'complete'), 10_000);
 * // a.events holds a server-reflexive candidate on 203.0.113.1
 * ```
 * @module
 */
export * from './random.js';
export * from './nat.js';
export * from './virtual-network.js';
export * from './endpoint.js';
export * from './stun-host.js';
export * from './turn-host.js';
export * from './mux-agents.js';
