import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Candidate, LocalCandidate } from '../../src/candidates/candidate.js';
import {
  chooseDefaultCandidate,
  defaultDestination,
  isPlaceholderDestination,
  toSignalledCandidate,
  transportOfProto,
} from '../../src/sip-offer-answer/index.js';
import { candidate } from './arbitraries.js';

const c = (over: Partial<Candidate>): Candidate => ({
  foundation: 'f',
  component: 1,
  transport: 'udp',
  priority: 1000,
  address: '192.0.2.1',
  port: 5000,
  type: 'host',
  ...over,
});

describe('chooseDefaultCandidate', () => {
  const host = c({ foundation: 'h', type: 'host', address: '10.0.0.5', priority: 2130706431 });
  const srflx = c({ foundation: 's', type: 'srflx', address: '203.0.113.5', priority: 1694498815, relatedAddress: '10.0.0.5', relatedPort: 5000 });
  const relay = c({ foundation: 'r', type: 'relay', address: '198.51.100.9', port: 61000, priority: 16777215, relatedAddress: '203.0.113.5', relatedPort: 5000 });

  it('prefers relay over srflx over host whatever the priorities (RFC 5245 §4.1.4)', () => {
    expect(chooseDefaultCandidate([host, srflx, relay], 1)).toBe(relay);
    expect(chooseDefaultCandidate([host, srflx], 1)).toBe(srflx);
    expect(chooseDefaultCandidate([host], 1)).toBe(host);
  });

  it('prefers the configured family first, then the higher priority within a type', () => {
    const v6relay = c({ type: 'relay', address: '2001:db8::9', priority: 99 });
    expect(chooseDefaultCandidate([host, v6relay], 1)).toBe(host);
    expect(chooseDefaultCandidate([host, v6relay], 1, { preferFamily: 6 })).toBe(v6relay);
    const host2 = c({ address: '10.0.0.6', priority: 2130706432 });
    expect(chooseDefaultCandidate([host, host2], 1)).toBe(host2);
  });

  it('never picks an mDNS name, another component, another transport, or a TCP active candidate', () => {
    const mdns = c({ address: '4a7b9e3c-5d2f-4c1a-9b8e-0f1e2d3c4b5a.local' });
    expect(chooseDefaultCandidate([mdns], 1)).toBeUndefined();
    expect(chooseDefaultCandidate([c({ component: 2 })], 1)).toBeUndefined();
    expect(chooseDefaultCandidate([c({ transport: 'tcp', tcpType: 'passive' })], 1)).toBeUndefined();
    expect(chooseDefaultCandidate([c({ transport: 'tcp', tcpType: 'active' })], 1, { transport: 'tcp' })).toBeUndefined();
    expect(chooseDefaultCandidate([c({ transport: 'tcp', tcpType: 'passive' })], 1, { transport: 'tcp' })).toBeDefined();
  });

  it('property: the choice is an IP candidate of the component with no better-ranked rival', () => {
    const rank = { relay: 3, srflx: 2, host: 1, prflx: 0 } as const;
    fc.assert(
      fc.property(fc.array(candidate, { maxLength: 8 }), (cs) => {
        const chosen = chooseDefaultCandidate(cs, 1);
        const eligible = cs.filter((x) => x.component === 1 && x.transport === 'udp' && !x.address.endsWith('.local'));
        if (!chosen) {
          expect(eligible).toHaveLength(0);
          return;
        }
        expect(eligible).toContain(chosen);
        const fam = (x: Candidate) => (x.address.includes(':') ? 6 : 4);
        for (const o of eligible) {
          const better =
            (fam(o) === 4 ? 1 : 0) > (fam(chosen) === 4 ? 1 : 0) ||
            (fam(o) === fam(chosen) && (rank[o.type] > rank[chosen.type] || (rank[o.type] === rank[chosen.type] && o.priority > chosen.priority)));
          expect(better).toBe(false);
        }
      }),
    );
  });
});

describe('defaultDestination', () => {
  it('uses 0.0.0.0 port 9 and no a=rtcp with no candidate yet (RFC 8840 §4.1.1)', () => {
    expect(defaultDestination([])).toEqual({ rtp: { address: '0.0.0.0', port: 9 }, placeholder: true });
    expect(defaultDestination([], { preferFamily: 6 })).toEqual({ rtp: { address: '::', port: 9 }, placeholder: true });
  });

  it('uses the placeholder when only mDNS host candidates exist (mDNS draft §3.1.2.4)', () => {
    const d = defaultDestination([c({ address: '4a7b9e3c-5d2f-4c1a-9b8e-0f1e2d3c4b5a.local' })]);
    expect(d.placeholder).toBe(true);
    expect(d.rtp).toEqual({ address: '0.0.0.0', port: 9 });
    expect(d.rtcp).toBeUndefined();
  });

  it('picks the RTCP default of the same foundation as the RTP default', () => {
    const cands = [
      c({ foundation: 'h', component: 1, address: '10.0.0.5', port: 5000 }),
      c({ foundation: 'h', component: 2, address: '10.0.0.5', port: 5001 }),
      c({ foundation: 'r', component: 1, type: 'relay', address: '198.51.100.9', port: 61000 }),
      c({ foundation: 'r', component: 2, type: 'relay', address: '198.51.100.9', port: 61002 }),
    ];
    const d = defaultDestination(cands);
    expect(d.rtp).toEqual({ address: '198.51.100.9', port: 61000 });
    expect(d.rtcp).toEqual({ address: '198.51.100.9', port: 61002 });
    expect(defaultDestination(cands, { rtcpMux: true }).rtcp).toBeUndefined();
  });

  it('uses TCP candidates for a TCP proto', () => {
    expect(transportOfProto('TCP/RTP/AVP')).toBe('tcp');
    expect(transportOfProto('UDP/TLS/RTP/SAVPF')).toBe('udp');
    expect(transportOfProto('RTP/AVP')).toBe('udp');
  });

  it('isPlaceholderDestination recognises 0.0.0.0/9 and ::/9 only', () => {
    expect(isPlaceholderDestination({ address: '0.0.0.0', port: 9 })).toBe(true);
    expect(isPlaceholderDestination({ address: '0:0::0', port: 9 })).toBe(true);
    expect(isPlaceholderDestination({ address: '0.0.0.0', port: 10 })).toBe(false);
    expect(isPlaceholderDestination({ address: '192.0.2.1', port: 9 })).toBe(false);
  });
});

describe('toSignalledCandidate', () => {
  it('signals the mDNS name of a LocalCandidate and drops base/socket/relay fields', () => {
    const local: LocalCandidate = {
      ...c({ address: '192.168.1.20' }),
      base: { address: '192.168.1.20', port: 5000 },
      socket: { address: '192.168.1.20', port: 5000 },
      mdnsName: '4a7b9e3c-5d2f-4c1a-9b8e-0f1e2d3c4b5a.local',
    };
    const s = toSignalledCandidate(local);
    expect(s.address).toBe('4a7b9e3c-5d2f-4c1a-9b8e-0f1e2d3c4b5a.local');
    expect(s).not.toHaveProperty('base');
    expect(s).not.toHaveProperty('mdnsName');
  });
});
