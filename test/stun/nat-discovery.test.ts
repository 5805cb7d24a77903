/**
 * NAT behaviour discovery (RFC 5780 §4) against the virtual network's NATs: every RFC 4787 mapping x filtering
 * combination, with and without hairpinning, the presets, no NAT, blocked UDP, and a server without RFC 5780. The
 * STUN host runs the real binding server with two addresses.
 */
import { describe, expect, it } from 'vitest';
import { NatDiscovery, type NatDiscoveryEvent, type NatDiscoveryResult } from '../../src/stun/nat-discovery.js';
import { addStunServer, NatPresets, VirtualNetwork, type NatBehavior, type NatBehaviorOptions } from '../../src/testing/index.js';

const KINDS: NatBehavior[] = ['endpoint-independent', 'address-dependent', 'address-and-port-dependent'];

function run(nat: NatBehaviorOptions | undefined, options: { rfc5780?: boolean; seed?: string } = {}) {
  const net = new VirtualNetwork({ seed: options.seed ?? 'nat-discovery' });
  const stun = addStunServer(net, { address: '198.51.100.1', ...(options.rfc5780 === false ? {} : { alternate: { address: '198.51.100.2' } }) });
  const host = nat === undefined ? net.addHost({ name: 'client', address: '203.0.113.50' }) : net.addHost({ name: 'client', network: net.addNat({ name: 'nat', publicIp: '203.0.113.1', ...nat }).lan });
  const discovery = new NatDiscovery({ random: net.random.fork('client'), local: host.address(5000), server: stun.address, hairpinLocal: host.address(5001) });
  const a = host.attach<NatDiscoveryEvent>(discovery, { name: 'discovery' });
  const t0 = net.now;
  discovery.start(net.now);
  expect(net.runUntilTrue(() => discovery.result !== undefined, 60_000)).toBe(true);
  return { result: discovery.result!, events: a.events, elapsed: net.now - t0, stun, net };
}

// What the hairpin test can tell (see the module comment of nat-discovery.ts).
function expectedHairpin(mapping: NatBehavior, filtering: NatBehavior, hairpinning: boolean): boolean | undefined {
  if (mapping !== 'endpoint-independent' && filtering !== 'endpoint-independent') return undefined;
  return hairpinning;
}

describe('NAT behaviour discovery on the virtual network', () => {
  const cases = KINDS.flatMap((mapping) => KINDS.flatMap((filtering) => [true, false].map((hairpinning) => [mapping, filtering, hairpinning] as const)));
  it.each(cases)('mapping %s, filtering %s, hairpinning %s', (mapping, filtering, hairpinning) => {
    const { result, events, elapsed } = run({ mapping, filtering, hairpinning });
    expect(result).toMatchObject({ udp: true, natted: true, mapping, filtering, otherAddress: { address: '198.51.100.2', port: 3479 } });
    expect(result.mappedAddress?.address).toBe('203.0.113.1');
    expect(result.responseOrigin).toEqual({ address: '198.51.100.1', port: 3478 });
    expect(result.hairpinning).toBe(expectedHairpin(mapping, filtering, hairpinning));
    if (result.hairpinning === undefined) expect(result.problems.join('\n')).toMatch(/hairpinning/);
    else expect(result.problems).toEqual([]);
    expect(events.filter((e) => e.type === 'step').map((e) => (e.type === 'step' ? e.step : ''))).toEqual(['connectivity', 'filtering', 'mapping', 'hairpinning']);
    expect(events.filter((e) => e.type === 'complete')).toHaveLength(1);
    // Bounded: waiting for answers that never come costs at most two transaction time-outs plus the hairpin one.
    expect(elapsed).toBeLessThan(12_000);
  });

  it.each(Object.entries(NatPresets).filter(([name]) => name !== 'udpBlocked'))('preset %s', (_name, preset) => {
    const { result } = run(preset);
    const p = preset as NatBehaviorOptions;
    expect(result.mapping).toBe(p.mapping);
    expect(result.filtering).toBe(p.filtering);
  });

  it('a host with a public address: not natted, endpoint-independent mapping without mapping tests', () => {
    const { result, net } = run(undefined);
    expect(result).toMatchObject({ udp: true, natted: false, mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: true });
    expect(result.mappedAddress).toEqual({ address: '203.0.113.50', port: 5000 });
    // No mapping test went out: nothing was sent to the alternate address.
    const sends = net.trace.filter((t) => t.kind === 'send');
    expect(sends.some((t) => t.to.address === '198.51.100.1')).toBe(true);
    expect(sends.some((t) => t.to.address === '198.51.100.2')).toBe(false);
  });

  it('UDP blocked: no connectivity, nothing else known', () => {
    const { result, elapsed } = run(NatPresets.udpBlocked);
    expect(result).toMatchObject({ udp: false, mappedAddress: undefined, natted: undefined, mapping: undefined, filtering: undefined, hairpinning: undefined });
    expect(result.problems[0]).toMatch(/no UDP connectivity/);
    expect(elapsed).toBe(3500); // sends at 0, 500 and 1500 ms, then Rm x RTO
  });

  it('a server without RFC 5780: mapped address and hairpinning only, and says why', () => {
    const { result } = run(NatPresets.fullCone, { rfc5780: false });
    expect(result).toMatchObject({ udp: true, natted: true, otherAddress: undefined, mapping: undefined, filtering: undefined, hairpinning: true });
    expect(result.problems[0]).toMatch(/OTHER-ADDRESS/);
  });

  it('filtering runs before mapping: an address-dependent filter is not opened by the mapping tests first', () => {
    // Had mapping test II (to the alternate address) gone first, the change-IP answer would pass this filter.
    const { result } = run({ mapping: 'endpoint-independent', filtering: 'address-dependent' });
    expect(result.filtering).toBe('address-dependent');
  });

  it('paces new transactions at least 100 ms apart (RFC 5780 §5)', () => {
    const net = new VirtualNetwork({ seed: 'pacing' });
    const stun = addStunServer(net, { address: '198.51.100.1', alternate: { address: '198.51.100.2' } });
    const host = net.addHost({ name: 'client', network: net.addNat({ name: 'nat', publicIp: '203.0.113.1', ...NatPresets.symmetric }).lan });
    const discovery = new NatDiscovery({ random: net.random.fork('c'), local: host.address(5000), server: stun.address, hairpinLocal: host.address(5001) });
    const sent: { time: number; id: string }[] = [];
    host.attach({
      handleReceive: (now, d) => discovery.handleReceive(now, d),
      handleTimeout: (now) => discovery.handleTimeout(now),
      pollTransmit: () => {
        const d = discovery.pollTransmit();
        if (d) sent.push({ time: net.now, id: Buffer.from(d.data.subarray(8, 20)).toString('hex') });
        return d;
      },
      pollEvent: () => discovery.pollEvent(),
      pollTimeout: () => discovery.pollTimeout(),
    });
    discovery.start(net.now);
    net.runUntilTrue(() => discovery.result !== undefined, 60_000);
    const firsts = [...new Map(sent.reverse().map((s) => [s.id, s.time])).values()].sort((a, b) => a - b);
    expect(firsts.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < firsts.length; i++) expect(firsts[i]! - firsts[i - 1]!).toBeGreaterThanOrEqual(100);
  });

  it('declines what is not STUN or not for its bases, drops garbage, and refuses bad options', () => {
    const d = new NatDiscovery({ random: { bytes: (n) => new Uint8Array(n) }, local: { address: '10.0.0.1', port: 5000 }, server: { address: '198.51.100.1', port: 3478 } });
    expect(d.handleReceive(0, { local: { address: '10.0.0.1', port: 5001 }, remote: { address: '1.2.3.4', port: 1 }, data: new Uint8Array(20) })).toBe(false);
    expect(d.handleReceive(0, { local: { address: '10.0.0.1', port: 5000 }, remote: { address: '1.2.3.4', port: 1 }, data: Uint8Array.of(1, 2, 3) })).toBe(false);
    const junk = Uint8Array.from([0x01, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42, ...new Array(12).fill(0), 0xff, 0xff]);
    expect(d.handleReceive(0, { local: { address: '10.0.0.1', port: 5000 }, remote: { address: '1.2.3.4', port: 1 }, data: junk })).toBe(true);
    d.start(0);
    expect(() => d.start(0)).toThrow(/already started/);
    const random = { bytes: (n: number) => new Uint8Array(n) };
    expect(() => new NatDiscovery({ random, local: { address: 'host', port: 1 }, server: { address: '198.51.100.1', port: 3478 } })).toThrow(RangeError);
    expect(() => new NatDiscovery({ random, local: { address: '10.0.0.1', port: 0 }, server: { address: '198.51.100.1', port: 3478 } })).toThrow(RangeError);
    expect(() => new NatDiscovery({ random, local: { address: '10.0.0.1', port: 1 }, hairpinLocal: { address: '10.0.0.1', port: 1 }, server: { address: '198.51.100.1', port: 3478 } })).toThrow(RangeError);
  });
});

export type { NatDiscoveryResult };
