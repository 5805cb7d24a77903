import { describe, expect, it } from 'vitest';
import { formatAddress, type TransportAddress } from '../../src/types.js';
import { ScriptedEndpoint } from '../../src/testing/endpoint.js';
import { NatPresets, NatTranslator, type NatBehavior, type NatBehaviorOptions } from '../../src/testing/nat.js';
import { SeededRandom } from '../../src/testing/random.js';
import { VirtualNetwork } from '../../src/testing/virtual-network.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const behaviors: NatBehavior[] = ['endpoint-independent', 'address-dependent', 'address-and-port-dependent'];

/**
 * One NAT with a client inside and two public servers S1 and S2, each replying to every datagram with the source
 * address it saw ("reflector"), unless the payload is "quiet".
 */
function topology(nat: NatBehaviorOptions, seed = 1) {
  const net = new VirtualNetwork({ seed });
  const box = net.addNat({ name: 'nat', publicIp: '203.0.113.100', ...nat });
  const ch = net.addHost({ name: 'client', network: box.lan });
  const client = new ScriptedEndpoint();
  ch.attach(client);
  const reflector = () =>
    new ScriptedEndpoint({
      onReceive: (_now, d, ep) => {
        if (text(d.data) !== 'quiet') ep.send(d.local, d.remote, bytes(formatAddress(d.remote)));
      },
    });
  const s1h = net.addHost({ name: 's1', address: '198.51.100.1' });
  const s2h = net.addHost({ name: 's2', address: '198.51.100.2' });
  const s1 = reflector();
  const s2 = reflector();
  s1h.attach(s1);
  s2h.attach(s2);
  const C = ch.address(5000);
  const S1a = s1h.address(1000);
  const S1b = s1h.address(2000);
  const S2a = s2h.address(1000);
  /** What the server saw as source for a datagram from C to `to`. */
  const observe = (to: TransportAddress): string => {
    const before = client.received.length;
    client.send(C, to, bytes('probe'));
    net.drive();
    const r = client.received[before];
    if (!r) throw new Error('no reply');
    return text(r.datagram.data);
  };
  return { net, box, ch, client, s1, s2, s1h, s2h, C, S1a, S1b, S2a, observe };
}

describe('NAT mapping behaviour (RFC 4787 §4.1), verified with packets', () => {
  it('endpoint-independent: one external port for every destination', () => {
    const t = topology({ mapping: 'endpoint-independent', filtering: 'endpoint-independent' });
    const seen = [t.observe(t.S1a), t.observe(t.S1b), t.observe(t.S2a)];
    expect(new Set(seen).size).toBe(1);
    expect(seen[0]!.startsWith('203.0.113.100:')).toBe(true);
    expect(t.box.mappings()).toHaveLength(1);
  });

  it('address-dependent: same port for the same destination IP, a new one for another IP', () => {
    const t = topology({ mapping: 'address-dependent', filtering: 'endpoint-independent' });
    const [a, b, c] = [t.observe(t.S1a), t.observe(t.S1b), t.observe(t.S2a)];
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(t.box.mappings()).toHaveLength(2);
  });

  it('address-and-port-dependent: a new port for each destination IP and port, reused for a repeat', () => {
    const t = topology(NatPresets.symmetric);
    const [a, b, c] = [t.observe(t.S1a), t.observe(t.S1b), t.observe(t.S2a)];
    expect(new Set([a, b, c]).size).toBe(3);
    expect(t.observe(t.S1a)).toBe(a);
    expect(t.box.mappings()).toHaveLength(3);
  });

  it('port preservation keeps the internal port when free, never overloads it (REQ-3)', () => {
    const t = topology({ portPreservation: true, filtering: 'endpoint-independent' });
    expect(t.observe(t.S1a)).toBe('203.0.113.100:5000');
    const other = t.net.addHost({ name: 'client2', network: t.box.lan });
    const c2 = new ScriptedEndpoint();
    other.attach(c2);
    c2.send(other.address(5000), t.S1a, bytes('probe'));
    t.net.drive();
    const seen = text(c2.received[0]!.datagram.data);
    expect(seen.startsWith('203.0.113.100:')).toBe(true);
    expect(seen).not.toBe('203.0.113.100:5000');
  });

  it('without port preservation external ports come from the configured range', () => {
    const t = topology({ portRange: [40000, 40009], mapping: 'address-and-port-dependent', filtering: 'endpoint-independent' });
    for (let p = 1; p <= 5; p++) {
      const port = Number(t.observe({ address: '198.51.100.1', port: p * 1000 }).split(':')[1]);
      expect(port).toBeGreaterThanOrEqual(40000);
      expect(port).toBeLessThanOrEqual(40009);
    }
  });
});

describe('NAT filtering behaviour (RFC 4787 §5), verified with packets', () => {
  // After the client talks to S1:1000 only, who else can reach its mapping?
  for (const filtering of behaviors) {
    it(`${filtering} filtering`, () => {
      const t = topology({ mapping: 'endpoint-independent', filtering });
      const mapped = t.observe(t.S1a);
      const [ip, port] = mapped.split(':');
      const ext = { address: ip!, port: Number(port) };
      const before = t.client.received.length;
      t.s1h.send(t.S1b, ext, bytes('from S1 other port'));
      t.s2h.send(t.S2a, ext, bytes('from S2'));
      t.s1h.send(t.S1a, ext, bytes('from S1 same port'));
      t.net.drive();
      const got = t.client.received.slice(before).map((r) => text(r.datagram.data));
      const expected = {
        'endpoint-independent': ['from S1 other port', 'from S2', 'from S1 same port'],
        'address-dependent': ['from S1 other port', 'from S1 same port'],
        'address-and-port-dependent': ['from S1 same port'],
      }[filtering];
      expect(got).toEqual(expected);
      expect(t.net.stats.dropped['nat-filtered'] ?? 0).toBe(3 - expected.length);
    });
  }

  it('unsolicited inbound to a port with no mapping is dropped', () => {
    const t = topology(NatPresets.fullCone);
    t.s1h.send(t.S1a, { address: '203.0.113.100', port: 40000 }, bytes('hello?'));
    t.net.drive();
    expect(t.client.received).toHaveLength(0);
    expect(t.net.stats.dropped['nat-no-mapping']).toBe(1);
    expect(t.net.trace.at(-1)).toMatchObject({ kind: 'drop', node: 'nat', reason: 'nat-no-mapping' });
  });
});

describe('NAT binding time-outs (RFC 4787 §4.3)', () => {
  it('a mapping expires after the idle time-out; inbound then fails and a new port is used', () => {
    const t = topology({ ...NatPresets.fullCone, mappingTimeoutMs: 30_000 });
    const first = t.observe(t.S1a);
    const [ip, port] = first.split(':');
    const ext = { address: ip!, port: Number(port) };
    t.net.runUntil(29_000);
    t.s1h.send(t.S1a, ext, bytes('quiet'));
    t.net.drive();
    expect(t.client.received.at(-1)!.time).toBe(29_011);
    t.net.runUntil(31_000);
    t.s1h.send(t.S1a, ext, bytes('quiet'));
    t.net.drive();
    expect(t.net.stats.dropped['nat-no-mapping']).toBe(1);
    expect(t.box.mappings()).toHaveLength(0);
    expect(t.observe(t.S1a)).not.toBe(first);
  });

  it('outbound traffic refreshes the mapping (REQ-6); inbound does not unless inboundRefresh', () => {
    for (const inboundRefresh of [false, true]) {
      const t = topology({ ...NatPresets.fullCone, mappingTimeoutMs: 30_000, inboundRefresh });
      const first = t.observe(t.S1a);
      const [ip, port] = first.split(':');
      const ext = { address: ip!, port: Number(port) };
      // Outbound keep-alives every 20 s keep the same mapping for a minute.
      for (let s = 20; s <= 60; s += 20) {
        t.net.runUntil(s * 1000);
        expect(t.observe(t.S1a)).toBe(first);
      }
      // Then only inbound traffic every 20 s.
      for (let s = 80; s <= 140; s += 20) {
        t.net.runUntil(s * 1000);
        t.s1h.send(t.S1a, ext, bytes('quiet'));
        t.net.drive();
      }
      const dropped = t.net.stats.dropped['nat-no-mapping'] ?? 0;
      if (inboundRefresh) expect(dropped).toBe(0);
      else expect(dropped).toBeGreaterThan(0);
    }
  });
});

describe('NAT hairpinning (RFC 4787 §6)', () => {
  for (const hairpinning of [true, false]) {
    it(`hairpinning ${hairpinning ? 'on: delivered with the external source (REQ-9a)' : 'off: dropped'}`, () => {
      const t = topology({ ...NatPresets.fullCone, hairpinning });
      const c1External = t.observe(t.S1a);
      const h2 = t.net.addHost({ name: 'client2', network: t.box.lan });
      const c2 = new ScriptedEndpoint();
      h2.attach(c2);
      c2.send(h2.address(6000), t.S1a, bytes('probe'));
      t.net.drive();
      const [ip, port] = text(c2.received[0]!.datagram.data).split(':');
      t.client.send(t.C, { address: ip!, port: Number(port) }, bytes('hairpin'));
      t.net.drive();
      const got = c2.received.filter((r) => text(r.datagram.data) === 'hairpin');
      if (hairpinning) {
        expect(got).toHaveLength(1);
        expect(formatAddress(got[0]!.datagram.remote)).toBe(c1External);
        expect(got[0]!.datagram.local).toEqual(h2.address(6000));
        expect(t.net.trace.some((e) => e.kind === 'nat' && e.direction === 'hairpin')).toBe(true);
      } else {
        expect(got).toHaveLength(0);
        expect(t.net.stats.dropped['nat-hairpin-disabled']).toBe(1);
      }
    });
  }

  it('hairpinned packets are filtered like any inbound packet', () => {
    const t = topology({ mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' });
    t.observe(t.S1a);
    const h2 = t.net.addHost({ name: 'client2', network: t.box.lan });
    const c2 = new ScriptedEndpoint();
    h2.attach(c2);
    c2.send(h2.address(6000), t.S1a, bytes('probe'));
    t.net.drive();
    const [ip, port] = text(c2.received[0]!.datagram.data).split(':');
    t.client.send(t.C, { address: ip!, port: Number(port) }, bytes('hairpin'));
    t.net.drive();
    expect(c2.received).toHaveLength(1);
    expect(t.net.stats.dropped['nat-filtered']).toBe(1);
  });
});

describe('other NAT set-ups', () => {
  it('a UDP-blocking firewall drops everything outbound', () => {
    const t = topology(NatPresets.udpBlocked);
    t.client.send(t.C, t.S1a, bytes('x'));
    t.net.drive();
    expect(t.s1.received).toHaveLength(0);
    expect(t.net.stats.dropped['nat-udp-blocked']).toBe(1);
  });

  it('NATs nest: a host behind two NATs is seen with the outer public address and gets replies', () => {
    const net = new VirtualNetwork({ seed: 2 });
    const outer = net.addNat({ name: 'cgn', publicIp: '203.0.113.50', lanPrefix: '100.64.0.0/24', ...NatPresets.fullCone });
    const inner = net.addNat({ name: 'home', outside: outer.lan, lanPrefix: '192.168.0.0/24', ...NatPresets.fullCone });
    expect(inner.publicIp).toBe('100.64.0.2');
    const h = net.addHost({ network: inner.lan });
    const c = new ScriptedEndpoint();
    h.attach(c);
    const sh = net.addHost({ address: '198.51.100.9' });
    sh.attach(new ScriptedEndpoint({ onReceive: (_n, d, ep) => ep.send(d.local, d.remote, bytes(formatAddress(d.remote))) }));
    c.send(h.address(7000), sh.address(3478), bytes('probe'));
    net.drive();
    expect(text(c.received[0]!.datagram.data).startsWith('203.0.113.50:')).toBe(true);
    const natHops = net.trace.filter((e) => e.kind === 'nat').map((e) => `${e.node}:${e.direction}`);
    expect(natHops).toEqual(['home:outbound', 'cgn:outbound', 'cgn:inbound', 'home:inbound']);
  });
});

describe('NatTranslator (the table alone)', () => {
  it('lists mappings with their filter state and forgets them on clear()', () => {
    const tr = new NatTranslator('203.0.113.1', NatPresets.portRestrictedCone, new SeededRandom(1));
    const inside = { address: '192.168.1.2', port: 1234 };
    const r1 = tr.outbound(0, inside, { address: '198.51.100.1', port: 1 });
    const r2 = tr.outbound(5, inside, { address: '198.51.100.2', port: 2 });
    expect(r1.ok && r2.ok && r1.created && !r2.created).toBe(true);
    const [m] = tr.mappings(10);
    expect(m).toMatchObject({ internal: inside, destination: undefined, createdMs: 0, refreshedMs: 5 });
    expect(m!.contacted).toHaveLength(2);
    expect(tr.inbound(10, { address: '198.51.100.2', port: 3 }, m!.external)).toEqual({ ok: false, reason: 'nat-filtered' });
    expect(tr.inbound(10, { address: '198.51.100.2', port: 2 }, m!.external)).toEqual({ ok: true, address: inside, created: false });
    tr.clear();
    expect(tr.inbound(10, { address: '198.51.100.2', port: 2 }, m!.external)).toEqual({ ok: false, reason: 'nat-no-mapping' });
  });

  it('reports exhaustion instead of overloading a port', () => {
    const tr = new NatTranslator('203.0.113.1', { ...NatPresets.symmetric, portRange: [5000, 5001] }, new SeededRandom(1));
    const inside = { address: '192.168.1.2', port: 1 };
    expect(tr.outbound(0, inside, { address: '198.51.100.1', port: 1 }).ok).toBe(true);
    expect(tr.outbound(0, inside, { address: '198.51.100.1', port: 2 }).ok).toBe(true);
    expect(tr.outbound(0, inside, { address: '198.51.100.1', port: 3 })).toEqual({ ok: false, reason: 'nat-ports-exhausted' });
    // Once the first two expire, their ports are free again.
    expect(tr.outbound(300_000, inside, { address: '198.51.100.1', port: 3 }).ok).toBe(true);
    expect(() => new NatTranslator('203.0.113.1', { portRange: [10, 5] }, new SeededRandom(1))).toThrow(RangeError);
  });
});
