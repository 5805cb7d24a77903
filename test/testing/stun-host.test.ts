import { describe, expect, it } from 'vitest';
import { Attr, getAttribute } from '../../src/stun/attributes.js';
import { StunMethod } from '../../src/stun/constants.js';
import { decodeStunMessage, encodeStunMessage } from '../../src/stun/message.js';
import type { TransportAddress } from '../../src/types.js';
import { ScriptedEndpoint } from '../../src/testing/endpoint.js';
import { NatPresets, type NatBehaviorOptions } from '../../src/testing/nat.js';
import { SeededRandom } from '../../src/testing/random.js';
import { addStunServer } from '../../src/testing/stun-host.js';
import { VirtualNetwork } from '../../src/testing/virtual-network.js';

const random = new SeededRandom('stun-client');

function bindingRequest(): { tx: Uint8Array; data: Uint8Array } {
  const tx = random.bytes(12);
  return { tx, data: encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: tx, attributes: [] }, { fingerprint: true }) };
}

/** Sends a Binding request from `from` to `server` and returns XOR-MAPPED-ADDRESS of the answer. */
function query(net: VirtualNetwork, client: ScriptedEndpoint, from: TransportAddress, server: TransportAddress): TransportAddress {
  const before = client.received.length;
  const { tx, data } = bindingRequest();
  client.send(from, server, data);
  net.drive();
  const answer = client.received[before];
  if (!answer) throw new Error('no answer');
  expect(answer.datagram.remote).toEqual(server);
  const m = decodeStunMessage(answer.datagram.data);
  expect(m.cls).toBe('success');
  expect(Buffer.from(m.transactionId).equals(Buffer.from(tx))).toBe(true);
  const mapped = getAttribute(m, Attr.XOR_MAPPED_ADDRESS);
  if (!mapped) throw new Error('no XOR-MAPPED-ADDRESS');
  return mapped;
}

const natTypes: [string, NatBehaviorOptions][] = [
  ['full cone', NatPresets.fullCone],
  ['restricted cone', NatPresets.restrictedCone],
  ['port-restricted cone', NatPresets.portRestrictedCone],
  ['address-dependent', NatPresets.addressDependent],
  ['symmetric', NatPresets.symmetric],
];

describe('STUN server host', () => {
  for (const [label, behavior] of natTypes) {
    it(`answers a client behind a ${label} NAT with the NAT's mapping`, () => {
      const net = new VirtualNetwork({ seed: label });
      const s1 = addStunServer(net, { name: 'stun1', address: '198.51.100.1' });
      const s2 = addStunServer(net, { name: 'stun2', address: '198.51.100.2' });
      const nat = net.addNat({ publicIp: '203.0.113.7', ...behavior });
      const h = net.addHost({ name: 'client', network: nat.lan });
      const client = new ScriptedEndpoint();
      h.attach(client);
      const base = h.address(50000);
      const m1 = query(net, client, base, s1.address);
      const m2 = query(net, client, base, s2.address);
      expect(m1.address).toBe('203.0.113.7');
      // The reported address is exactly the NAT's mapping for that destination.
      const mappings = nat.mappings();
      expect(mappings.map((m) => m.external)).toContainEqual(m1);
      expect(mappings.map((m) => m.external)).toContainEqual(m2);
      expect(mappings.every((m) => m.internal.port === 50000 && m.internal.address === h.ips[0])).toBe(true);
      if (behavior.mapping === 'endpoint-independent') expect(m2).toEqual(m1);
      else expect(m2).not.toEqual(m1);
      expect(s1.server.stats.successResponses).toBe(1);
    });
  }

  it('reports a public client its own address and ignores other ports of its host', () => {
    const net = new VirtualNetwork();
    const stun = addStunServer(net, { address: '198.51.100.1', port: 19302, software: 'vnet' });
    const h = net.addHost({ address: '198.51.100.50' });
    const client = new ScriptedEndpoint();
    h.attach(client);
    expect(query(net, client, h.address(1234), stun.address)).toEqual({ address: '198.51.100.50', port: 1234 });
    // Port 3478 of the same host has no listener.
    client.send(h.address(1234), stun.host.address(3478), bindingRequest().data);
    net.drive();
    expect(net.stats.dropped.unclaimed).toBe(1);
  });

  it('can share a host with another machine', () => {
    const net = new VirtualNetwork();
    const host = net.addHost({ address: '198.51.100.1' });
    const other = new ScriptedEndpoint({ accept: (d) => d.local.port === 9 });
    host.attach(other);
    const stun = addStunServer(net, { host });
    const c = net.addHost();
    const client = new ScriptedEndpoint();
    c.attach(client);
    expect(query(net, client, c.address(1), stun.address)).toEqual(c.address(1));
    client.send(c.address(1), host.address(9), bindingRequest().data);
    net.drive();
    expect(other.received).toHaveLength(1);
    expect(stun.server.stats.received).toBe(1);
  });
});
