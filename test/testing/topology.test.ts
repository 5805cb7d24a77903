import { describe, expect, it } from 'vitest';
import { Attr, getAttribute } from '../../src/stun/attributes.js';
import { StunMethod } from '../../src/stun/constants.js';
import { decodeStunMessage, encodeStunMessage } from '../../src/stun/message.js';
import { TurnClient, type TurnClientEvent } from '../../src/turnclient/turn-client.js';
import { ScriptedEndpoint } from '../../src/testing/endpoint.js';
import { NatPresets } from '../../src/testing/nat.js';
import { addStunServer } from '../../src/testing/stun-host.js';
import { addTurnServer } from '../../src/testing/turn-host.js';
import { VirtualNetwork, formatTrace } from '../../src/testing/virtual-network.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** The topology of the NAT-matrix scenarios: two hosts behind two NATs, STUN and TURN on the public network. */
function build(seed: string) {
  const net = new VirtualNetwork({ seed, publicConditions: { delayMs: 15, jitterMs: 4, loss: 0.02 } });
  const stun = addStunServer(net, { address: '198.51.100.1' });
  const turn = addTurnServer(net, { address: '198.51.100.2', users: { alice: 'a-pass', bob: 'b-pass' } });
  const natA = net.addNat({ name: 'natA', publicIp: '203.0.113.1', ...NatPresets.symmetric });
  const natB = net.addNat({ name: 'natB', publicIp: '203.0.113.2', ...NatPresets.portRestrictedCone });
  const alice = net.addHost({ name: 'alice', network: natA.lan });
  const bob = net.addHost({ name: 'bob', network: natB.lan });
  const clientA = new TurnClient({ server: turn.address, local: alice.address(5000), username: 'alice', password: 'a-pass', random: net.random.fork('alice') });
  const clientB = new TurnClient({ server: turn.address, local: bob.address(5000), username: 'bob', password: 'b-pass', random: net.random.fork('bob') });
  const a = alice.attach(clientA, { name: 'alice-turn' });
  const b = bob.attach(clientB, { name: 'bob-turn' });
  // A STUN probe socket on alice, to show srflx discovery through the symmetric NAT.
  const probe = new ScriptedEndpoint();
  alice.attach(probe);
  return { net, stun, turn, natA, natB, alice, bob, clientA, clientB, a, b, probe };
}

function relayToRelay(seed: string) {
  const t = build(seed);
  const { net, clientA, clientB, a, b } = t;
  const has = (events: readonly TurnClientEvent[], type: TurnClientEvent['type']) => events.some((e) => e.type === type);
  clientA.allocate(net.now);
  clientB.allocate(net.now);
  expect(net.runUntilTrue(() => has(a.events, 'allocated') && has(b.events, 'allocated'), 30_000)).toBe(true);
  const relayA = clientA.relayed[0]!;
  const relayB = clientB.relayed[0]!;
  // Each side needs a permission for the other's relayed IP (both relays are on the same server IP here).
  clientB.createPermission(net.now, relayA.address);
  clientA.send(net.now, relayB, new TextEncoder().encode('alice -> bob via two relays'));
  expect(net.runUntilTrue(() => has(b.events, 'data'), 30_000)).toBe(true);
  return { ...t, relayA, relayB };
}

describe('a whole topology', () => {
  it('srflx through a symmetric NAT, then relay-to-relay data between two NATed TurnClients', () => {
    const t = relayToRelay('topology');
    const data = t.b.events.find((e) => e.type === 'data');
    expect(data?.type === 'data' && text(data.data)).toBe('alice -> bob via two relays');
    expect(data?.type === 'data' && data.peer).toEqual(t.relayA);
    // The STUN server reports alice's symmetric-NAT mapping, which differs from the one towards the TURN server.
    const tx = t.net.random.fork('probe').bytes(12);
    t.probe.send(t.alice.address(6000), t.stun.address, encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: tx, attributes: [] }));
    t.net.settle();
    const mapped = getAttribute(decodeStunMessage(t.probe.received[0]!.datagram.data), Attr.XOR_MAPPED_ADDRESS);
    expect(mapped?.address).toBe('203.0.113.1');
    expect(t.natA.mappings().map((m) => m.external)).toContainEqual(mapped);
    expect(t.turn.server.allocations(t.net.now).map((x) => x.username).sort()).toEqual(['alice', 'bob']);
  });

  it('replays exactly from the seed', () => {
    const r1 = relayToRelay('replay');
    const r2 = relayToRelay('replay');
    expect(formatTrace(r1.net.trace)).toBe(formatTrace(r2.net.trace));
    expect(r1.net.now).toBe(r2.net.now);
    expect(r1.relayA).toEqual(r2.relayA);
  });
});
