import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Candidate } from '../../src/candidates/candidate.js';
import {
  candidateAddressKind,
  candidateExtension,
  formatCandidate,
  isMdnsName,
  isUuidMdnsName,
  parseCandidate,
  tryParseCandidate,
  unusableRemoteAddress,
  validateCandidate,
} from '../../src/candidates/grammar.js';
import { CandidateParseError } from '../../src/errors.js';
import { candidateArb } from './arbitraries.js';

// Lines laid out the way each stack writes them (written from the RFC 8839 grammar and each stack's field order).
const REAL_LINES: Record<string, readonly string[]> = {
  chrome: [
    'candidate:4234997325 1 udp 2122260223 192.168.1.4 56143 typ host generation 0 ufrag sCbL network-id 1 network-cost 10',
    'candidate:842163049 1 udp 1677729535 203.0.113.77 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag EEtu network-cost 999',
    'candidate:1019216383 1 tcp 1518280447 192.168.1.4 9 typ host tcptype active generation 0 ufrag sCbL network-id 1 network-cost 10',
    'candidate:3993432221 1 udp 2122262783 2001:db8:85a3::8a2e:370:7334 53421 typ host generation 0 ufrag sCbL network-id 2 network-cost 10',
    'candidate:1467250027 1 udp 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 54400 typ host generation 0 ufrag 0pcj network-cost 999',
    'candidate:2157334355 1 udp 33562367 203.0.113.7 59835 typ relay raddr 198.51.100.2 rport 49521 generation 0 ufrag Ntk7 network-id 1 network-cost 10',
    'candidate:3169127421 2 udp 2122260222 192.168.1.4 56144 typ host generation 0 ufrag sCbL network-id 1',
    'candidate:2999745851 1 tcp 1518214911 192.168.56.1 9 typ host tcptype active generation 0 network-id 2',
  ],
  firefox: [
    'candidate:0 1 UDP 2122252543 192.168.1.4 52117 typ host',
    'candidate:1 1 UDP 1686052863 203.0.113.9 52117 typ srflx raddr 192.168.1.4 rport 52117',
    'candidate:2 1 TCP 2105524479 192.168.1.4 9 typ host tcptype active',
    'candidate:3 1 UDP 92216831 198.51.100.20 61337 typ relay raddr 198.51.100.20 rport 61337',
    'candidate:0 1 UDP 2122187007 2e5f8a4c-0d1b-4f52-9c2a-3b7d1e6f9a10.local 56622 typ host',
    'candidate:4 2 UDP 1686052862 203.0.113.9 61771 typ srflx raddr 0.0.0.0 rport 9',
    'candidate:5 1 TCP 2105458943 2001:db8::5 9 typ host tcptype active',
  ],
  libnice: [
    'a=candidate:1 1 UDP 2013266431 192.168.1.10 47234 typ host',
    'a=candidate:2 1 UDP 1677721855 203.0.113.5 47234 typ srflx raddr 192.168.1.10 rport 47234',
    'a=candidate:3 1 TCP 1015022079 192.168.1.10 9 typ host tcptype active',
    'a=candidate:4 1 TCP 1010827775 192.168.1.10 43210 typ host tcptype passive',
    'a=candidate:5 2 UDP 2013266430 fe80::2a0:c9ff:fe12:3456 47235 typ host',
  ],
  pion: [
    'candidate:1966762134 1 udp 2130706431 192.168.1.4 53977 typ host',
    'candidate:3528925834 1 udp 1694498815 203.0.113.4 62111 typ srflx raddr 0.0.0.0 rport 62111',
    'candidate:2384946939 1 tcp 1671430143 192.168.1.4 8443 typ host tcptype passive',
    // tcptype before raddr/rport: out of canonical order, must still round-trip.
    'candidate:1052353102 1 tcp 1343229695 203.0.113.4 8443 typ srflx tcptype passive raddr 192.168.1.4 rport 8443',
    'candidate:2230659322 1 udp 16777215 198.51.100.9 50000 typ relay raddr 203.0.113.4 rport 51234',
  ],
  rfc: [
    'a=candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 203.0.113.141 rport 8998',
    'a=candidate:1 1 TCP 2128609279 10.0.1.1 9 typ host tcptype active',
    'a=candidate:3 1 TCP 2120220671 10.0.1.1 8999 typ host tcptype so',
  ],
};

describe('grammar: real-world lines', () => {
  for (const [stack, lines] of Object.entries(REAL_LINES)) {
    for (const line of lines) {
      it(`${stack}: ${line}`, () => {
        const c = parseCandidate(line);
        expect(formatCandidate(c, { sdpAttribute: line.startsWith('a=') })).toBe(line);
        // The record holds the normalised transport whatever the spelling.
        expect(['udp', 'tcp']).toContain(c.transport);
      });
    }
  }

  it('parses the fields of a Chrome srflx line', () => {
    const c = parseCandidate(REAL_LINES.chrome![1]!);
    expect(c).toEqual({
      foundation: '842163049',
      component: 1,
      transport: 'udp',
      priority: 1677729535,
      address: '203.0.113.77',
      port: 46154,
      type: 'srflx',
      relatedAddress: '0.0.0.0',
      relatedPort: 0,
      extensions: [
        ['generation', '0'],
        ['ufrag', 'EEtu'],
        ['network-cost', '999'],
      ],
    });
    expect(candidateExtension(c, 'ufrag')).toBe('EEtu');
    expect(candidateExtension(c, 'network-id')).toBeUndefined();
  });

  it('normalises upper-case transport and keeps the spelling', () => {
    const c = parseCandidate('candidate:1 1 UDP 2122252543 192.168.1.4 52117 typ host');
    expect(c.transport).toBe('udp');
    expect(c.transportText).toBe('UDP');
    const lower = parseCandidate('candidate:1 1 udp 2122252543 192.168.1.4 52117 typ host');
    expect(lower.transportText).toBeUndefined();
    // A record without transportText formats lower case.
    const { transportText: _t, ...rest } = c;
    expect(formatCandidate(rest)).toBe('candidate:1 1 udp 2122252543 192.168.1.4 52117 typ host');
  });

  it('keeps tcptype typed and extensions in order; pion order keeps the position', () => {
    const c = parseCandidate(REAL_LINES.pion![3]!);
    expect(c.tcpType).toBe('passive');
    expect(c.relatedAddress).toBe('192.168.1.4');
    expect(c.relatedPort).toBe(8443);
    // An updated related address is written at its original position.
    const hidden = formatCandidate({ ...c, relatedAddress: '0.0.0.0', relatedPort: 9 });
    expect(hidden).toBe('candidate:1052353102 1 tcp 1343229695 203.0.113.4 8443 typ srflx tcptype passive raddr 0.0.0.0 rport 9');
    const chrome = parseCandidate(REAL_LINES.chrome![2]!);
    expect(chrome.tcpType).toBe('active');
    expect(chrome.extensions?.map(([n]) => n)).toEqual(['generation', 'ufrag', 'network-id', 'network-cost']);
  });

  it('accepts the bare value, the candidate: prefix, the a= prefix and a trailing CRLF', () => {
    const bare = '1 1 udp 2130706431 127.0.0.1 5000 typ host';
    const a = parseCandidate(bare);
    expect(parseCandidate(`candidate:${bare}`)).toEqual(a);
    expect(parseCandidate(`a=candidate:${bare}\r\n`)).toEqual(a);
    expect(formatCandidate(a)).toBe(`candidate:${bare}`);
    expect(formatCandidate(a, { sdpAttribute: true })).toBe(`a=candidate:${bare}`);
  });

  it('tolerates a space after "candidate:" (seen from some pion versions) and writes the standard form', () => {
    const c = parseCandidate('a=candidate: 462404801 1 udp 2130706431 198.51.100.19 14103 typ host');
    expect(c.foundation).toBe('462404801');
    expect(formatCandidate(c, { sdpAttribute: true })).toBe('a=candidate:462404801 1 udp 2130706431 198.51.100.19 14103 typ host');
  });

  it('keeps unknown extensions', () => {
    const line = 'candidate:7 1 udp 100 10.0.0.1 1 typ host x-foo bar!baz network-id 3 zz 0';
    const c = parseCandidate(line);
    expect(c.extensions).toEqual([
      ['x-foo', 'bar!baz'],
      ['network-id', '3'],
      ['zz', '0'],
    ]);
    expect(formatCandidate(c)).toBe(line);
  });
});

describe('grammar: errors name the field', () => {
  const base = ['f1', '1', 'udp', '100', '10.0.0.1', '5000', 'typ', 'host'];
  const withField = (i: number, v: string) => `candidate:${base.map((t, j) => (j === i ? v : t)).join(' ')}`;
  const cases: [string, string][] = [
    [withField(0, 'a-b'), 'foundation'],
    [withField(0, 'x'.repeat(33)), 'foundation'],
    ['candidate:', 'foundation'],
    [withField(1, '0'), 'component'],
    [withField(1, '257'), 'component'],
    [withField(1, '1000'), 'component'],
    [withField(1, 'x'), 'component'],
    [withField(2, 'sctp'), 'transport'],
    [withField(3, '0'), 'priority'],
    [withField(3, '2147483648'), 'priority'],
    [withField(3, '12345678901'), 'priority'],
    [withField(3, '-5'), 'priority'],
    [withField(4, '10.0.0.256'), 'address'],
    [withField(4, '2001:db8:::1'), 'address'],
    [withField(4, 'bad_name.local'), 'address'],
    [withField(5, '65536'), 'port'],
    [withField(5, 'http'), 'port'],
    [withField(6, 'type'), 'type'],
    [withField(7, 'bogus'), 'type'],
    ['candidate:f1 1 udp 100 10.0.0.1 5000', 'type'],
    ['candidate:f1 1 udp 100 10.0.0.1', 'port'],
    [`${withField(7, 'srflx')} raddr 1.2.3 rport 5`, 'raddr'],
    [`${withField(7, 'srflx')} raddr 1.2.3.4 rport 70000`, 'rport'],
    [`${withField(7, 'srflx')} raddr 1.2.3.4 raddr 1.2.3.4`, 'raddr'],
    [`${withField(7, 'host')} tcptype sideways`, 'tcptype'],
    [`${withField(7, 'host')} generation`, 'extension'],
    [`${withField(7, 'host')} gen(x) 0`, 'extension'],
  ];
  for (const [line, field] of cases) {
    it(`${field}: ${line}`, () => {
      try {
        parseCandidate(line);
        expect.fail('parsed');
      } catch (e) {
        expect(e).toBeInstanceOf(CandidateParseError);
        expect((e as CandidateParseError).field).toBe(field);
        expect((e as CandidateParseError).code).toBe('ERR_CANDIDATE_PARSE');
      }
      const r = tryParseCandidate(line);
      expect(r.ok).toBe(false);
    });
  }

  it('format rejects records the grammar cannot carry', () => {
    const ok: Candidate = { foundation: 'a', component: 1, transport: 'udp', priority: 1, address: '127.0.0.1', port: 1, type: 'host' };
    expect(() => formatCandidate({ ...ok, priority: 0 })).toThrow(CandidateParseError);
    expect(() => formatCandidate({ ...ok, foundation: '' })).toThrow(CandidateParseError);
    expect(() => formatCandidate({ ...ok, extensions: [['a b', 'c']] })).toThrow(CandidateParseError);
    expect(() => formatCandidate({ ...ok, transportText: 'TCP' })).toThrow(CandidateParseError);
    expect(formatCandidate({ ...ok, transportText: 'UDP' })).toBe('candidate:a 1 UDP 1 127.0.0.1 1 typ host');
  });
});

describe('grammar: address kinds', () => {
  it('classifies addresses per RFC 8839 and the mDNS draft', () => {
    expect(candidateAddressKind('192.0.2.1')).toBe('ipv4');
    expect(candidateAddressKind('2001:db8::1')).toBe('ipv6');
    expect(candidateAddressKind('1f4712db-ea17-4bcf-a596-105139dfd8bf.local')).toBe('mdns');
    expect(candidateAddressKind('host.example.local')).toBe('fqdn');
    expect(candidateAddressKind('example.com')).toBe('fqdn');
    expect(isMdnsName('x.local')).toBe(true);
    expect(isMdnsName('.local')).toBe(false);
    expect(isUuidMdnsName('1f4712db-ea17-4bcf-a596-105139dfd8bf.local')).toBe(true);
    expect(isUuidMdnsName('1f4712db-ea17-3bcf-a596-105139dfd8bf.local')).toBe(false);
  });
});

describe('grammar: properties', () => {
  it('format then parse is the identity on records', () => {
    fc.assert(
      fc.property(candidateArb, (c) => {
        expect(parseCandidate(formatCandidate(c))).toEqual(c);
      }),
      { numRuns: 500 },
    );
  });

  it('parse then format is the identity on formatted lines', () => {
    fc.assert(
      fc.property(candidateArb, fc.boolean(), (c, a) => {
        const line = formatCandidate(c, { sdpAttribute: a });
        expect(formatCandidate(parseCandidate(line), { sdpAttribute: a })).toBe(line);
      }),
      { numRuns: 300 },
    );
  });

  it('known attributes in any order round-trip', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(['raddr 10.1.2.3', 'rport 9', 'tcptype so', 'generation 0', 'network-id 4'], { minLength: 0 }),
        (pairs) => {
          const line = ['candidate:1 1 tcp 5 10.0.0.1 9 typ srflx', ...pairs].join(' ');
          expect(formatCandidate(parseCandidate(line))).toBe(line);
        },
      ),
    );
  });

  it('never throws anything but CandidateParseError on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (s) => {
        const r = tryParseCandidate(s);
        if (r.ok) expect(typeof r.candidate.priority).toBe('number');
      }),
      { numRuns: 500 },
    );
  });
});

describe('candidate records from signalling (issue 16: objects checked like lines)', () => {
  const good = { foundation: '1', component: 1, transport: 'udp', priority: 2130706431, address: '192.0.2.1', port: 5000, type: 'host' } as const;
  it('a record of the wrong shape is a typed CandidateParseError naming the field, never a TypeError', () => {
    const bad: unknown[] = [null, 7, 'x', { ...good, foundation: 1 }, { ...good, port: '5000' }, { ...good, address: undefined }, { ...good, extensions: 'x' }, { ...good, extensions: [[1, 2]] }, { ...good, transportText: 5 }, { ...good, priority: 0 }, { ...good, port: 70000 }, { ...good, type: 'bogus' }];
    for (const b of bad) {
      expect(() => validateCandidate(b as never), JSON.stringify(b)).toThrow(CandidateParseError);
    }
    expect(() => validateCandidate({ ...good, port: '5000' } as never)).toThrow(expect.objectContaining({ field: 'port' }));
    expect(() => validateCandidate(good)).not.toThrow();
  });
  it('addresses that can never be a peer are named', () => {
    expect(unusableRemoteAddress(good)).toBeUndefined();
    expect(unusableRemoteAddress({ ...good, address: '0.0.0.0' })).toBe('unspecified-address');
    expect(unusableRemoteAddress({ ...good, address: '::' })).toBe('unspecified-address');
    expect(unusableRemoteAddress({ ...good, address: '255.255.255.255' })).toBe('broadcast-address');
    expect(unusableRemoteAddress({ ...good, address: '224.0.0.251' })).toBe('multicast-address');
    expect(unusableRemoteAddress({ ...good, address: 'FF02::FB' })).toBe('multicast-address');
    expect(unusableRemoteAddress({ ...good, port: 0 })).toBe('port-zero');
    expect(unusableRemoteAddress({ ...good, transport: 'tcp', port: 0, tcpType: 'active' })).toBeUndefined();
  });
});
