import { describe, expect, it } from 'vitest';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import { excludedReason, selectHostAddresses, type NetworkInterfaceMap } from '../../src/candidates/host.js';
import { eliminateRedundant, isRedundantWith } from '../../src/candidates/redundancy.js';

const IFACES: NetworkInterfaceMap = {
  lo: [
    { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
    { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
  ],
  eth0: [
    { address: '192.0.2.10', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.0.2.10/24' },
    { address: '2001:DB8::10', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: null, scopeid: 0 },
    { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
    { address: 'fec0::5', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: null, scopeid: 0 },
    { address: '::ffff:192.0.2.10', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: null, scopeid: 0 },
  ],
  docker0: [{ address: '172.17.0.1', netmask: '255.255.0.0', family: 4, mac: '02:42:00:00:00:01', internal: false, cidr: '172.17.0.1/16' }],
  empty: undefined,
};

describe('host address selection (RFC 8445 §5.1.1.1)', () => {
  it('excludes loopback, link-local, site-local and IPv4-mapped by default', () => {
    const got = selectHostAddresses(IFACES).map((h) => `${h.interfaceName}/${h.address}`);
    expect(got).toEqual(['eth0/192.0.2.10', 'eth0/2001:db8::10', 'docker0/172.17.0.1']);
  });

  it('honours includeLoopback, includeLinkLocal, filters and families', () => {
    const lo = selectHostAddresses(IFACES, { includeLoopback: true, interfaceFilter: (n) => n === 'lo' });
    expect(lo).toEqual([
      { interfaceName: 'lo', address: '127.0.0.1', family: 4, loopback: true },
      { interfaceName: 'lo', address: '::1', family: 6, loopback: true },
    ]);
    const ll = selectHostAddresses(IFACES, { includeLinkLocal: true, families: [6] });
    expect(ll.map((h) => h.address)).toEqual(['2001:db8::10', 'fe80::1']);
    expect(ll[1]!.scopeId).toBe(2);
    const filtered = selectHostAddresses(IFACES, { addressFilter: (a) => a.startsWith('172.') });
    expect(filtered.map((h) => h.address)).toEqual(['172.17.0.1']);
    expect(selectHostAddresses(IFACES, { interfaceFilter: (n) => n !== 'eth0', families: [4] }).map((h) => h.address)).toEqual(['172.17.0.1']);
  });

  it('names why an address is excluded', () => {
    expect(excludedReason('0.0.0.0')).toBe('unspecified');
    expect(excludedReason('::')).toBe('unspecified');
    expect(excludedReason('::1')).toBe('loopback');
    expect(excludedReason('127.0.0.5')).toBe('loopback');
    expect(excludedReason('127.0.0.5', { includeLoopback: true })).toBeUndefined();
    expect(excludedReason('::192.0.2.1')).toBe('IPv4-compatible');
    expect(excludedReason('fec0::1')).toBe('site-local');
    expect(excludedReason('febf::1')).toBe('link-local');
    expect(excludedReason('::ffff:10.0.0.1')).toBe('IPv4-mapped');
    expect(excludedReason('ff02::fb')).toBe('multicast');
    expect(excludedReason('224.0.0.251')).toBe('multicast or reserved');
    expect(excludedReason('2001:db8::1')).toBeUndefined();
  });
});

function cand(p: Partial<LocalCandidate> & Pick<LocalCandidate, 'address' | 'port' | 'priority' | 'type'>): LocalCandidate {
  const base = p.base ?? { address: p.address, port: p.port };
  return { foundation: '1', component: 1, transport: 'udp', base, socket: base, ...p };
}

describe('redundancy (RFC 8445 §5.1.3)', () => {
  it('drops the lower-priority candidate with the same transport address and base', () => {
    const host = cand({ address: '192.0.2.10', port: 5000, priority: 2130706431, type: 'host' });
    // Not behind a NAT: the server reflects the host address.
    const srflx = cand({ address: '192.0.2.10', port: 5000, priority: 1694498815, type: 'srflx', base: host.base });
    const other = cand({ address: '203.0.113.1', port: 5000, priority: 1694498814, type: 'srflx', base: host.base });
    expect(eliminateRedundant([srflx, host, other])).toEqual([host, other]);
    expect(isRedundantWith(srflx, [host])).toBe(true);
    expect(isRedundantWith(host, [srflx])).toBe(false);
  });

  it('keeps candidates with the same address but different bases, and mDNS-hidden hosts', () => {
    const a = cand({ address: '203.0.113.1', port: 5000, priority: 10, type: 'srflx', base: { address: '10.0.0.1', port: 5000 } });
    const b = cand({ address: '203.0.113.1', port: 5000, priority: 9, type: 'srflx', base: { address: '10.0.0.2', port: 5000 } });
    expect(eliminateRedundant([a, b])).toEqual([a, b]);
    const host = cand({ address: '203.0.113.1', port: 5000, priority: 20, type: 'host', mdnsName: '1f4712db-ea17-4bcf-a596-105139dfd8bf.local' });
    const srflx = cand({ address: '203.0.113.1', port: 5000, priority: 10, type: 'srflx', base: host.base });
    expect(eliminateRedundant([host, srflx])).toEqual([host, srflx]);
    // IPv6 spelled two ways is the same address.
    const h6 = cand({ address: '2001:db8::1', port: 1, priority: 5, type: 'host' });
    const s6 = cand({ address: '2001:DB8:0:0::1', port: 1, priority: 4, type: 'srflx', base: { address: '2001:db8::1', port: 1 } });
    expect(eliminateRedundant([s6, h6])).toEqual([h6]);
  });
});

describe('listHostAddresses (Node edge)', () => {
  it('reads os.networkInterfaces and finds loopback only when asked', async () => {
    const { listHostAddresses } = await import('../../src/node/interfaces.js');
    const lo = listHostAddresses({ includeLoopback: true, families: [4], addressFilter: (a) => a.startsWith('127.') });
    expect(lo.map((h) => h.address)).toContain('127.0.0.1');
    expect(lo.every((h) => h.loopback)).toBe(true);
    expect(listHostAddresses().some((h) => h.address === '127.0.0.1')).toBe(false);
  });
});
