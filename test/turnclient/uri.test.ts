import { describe, expect, it } from 'vitest';
import { TurnError } from '../../src/errors.js';
import { resolveTurnServers, type TurnDnsResolver } from '../../src/node/turn-resolve.js';
import { formatTurnUri, normalizeIceServers, orderSrvRecords, parseTurnUri, resolutionPlan, srvName, type SrvRecord } from '../../src/turnclient/uri.js';
import { seededRandom } from './scripted.js';

describe('turn: / turns: URIs (RFC 7065 §3.1)', () => {
  it.each([
    ['turn:turn.example', { secure: false, host: 'turn.example', explicitPort: undefined, port: 3478, transport: 'udp', isIpLiteral: false }],
    ['turn:turn.example?transport=tcp', { secure: false, host: 'turn.example', port: 3478, transport: 'tcp' }],
    ['TURN:Turn.EXAMPLE:1234?Transport=UDP', { host: 'turn.example', explicitPort: 1234, port: 1234, transport: 'udp' }],
    ['turns:turn.example', { secure: true, port: 5349, transport: 'tls' }],
    ['turns:turn.example:443?transport=tcp', { secure: true, port: 443, transport: 'tls' }],
    ['turn:192.0.2.1:3479', { host: '192.0.2.1', isIpLiteral: true, port: 3479 }],
    ['turn:[2001:DB8::1]:3478?transport=tcp', { host: '2001:db8::1', isIpLiteral: true, transport: 'tcp' }],
    ['turns:[::1]', { host: '::1', port: 5349, transport: 'tls' }],
  ] as const)('parses %s', (text, expected) => {
    expect(parseTurnUri(text)).toMatchObject(expected);
  });

  it.each([
    'turn:',
    'turn://turn.example',
    'stun:turn.example',
    'turn:turn.example:0',
    'turn:turn.example:70000',
    'turn:turn.example?transport=sctp',
    'turns:turn.example?transport=udp', // DTLS: not supported
    'turn:turn.example?foo=bar',
    'turn:[example]:1',
    'turn:2001:db8::1',
    'turn:256.1.1.1',
  ])('rejects %s with TurnError bad-uri', (text) => {
    try {
      parseTurnUri(text);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TurnError);
      expect((e as TurnError).reason).toBe('bad-uri');
    }
  });

  it('formats back', () => {
    for (const t of ['turn:turn.example', 'turn:turn.example:1?transport=tcp', 'turns:[2001:db8::1]:5349', 'turn:192.0.2.1']) {
      expect(formatTurnUri(parseTurnUri(t))).toBe(t);
    }
  });

  it('normalises RTCIceServer lists and requires credentials for TURN', () => {
    const out = normalizeIceServers([
      { urls: ['turn:a.example?transport=tcp', 'turns:a.example'], username: 'u', credential: 'p' },
      { urls: 'stun:[2001:db8::2]:3479' },
    ]);
    expect(out.turn.map((t) => [t.uri.transport, t.username, t.password])).toEqual([
      ['tcp', 'u', 'p'],
      ['tls', 'u', 'p'],
    ]);
    expect(out.stun).toEqual([{ host: '2001:db8::2', port: 3479, secure: false }]);
    expect(() => normalizeIceServers([{ urls: 'turn:a.example' }])).toThrow(TurnError);
    expect(() => normalizeIceServers([{ urls: [] }])).toThrow(TurnError);
    expect(() => normalizeIceServers([{ urls: 'http://a.example' }])).toThrow(TurnError);
  });
});

describe('RFC 5928 resolution', () => {
  it('chooses SRV names by scheme and transport, and skips SRV for literals and explicit ports', () => {
    expect(srvName(parseTurnUri('turn:turn.example'))).toBe('_turn._udp.turn.example');
    expect(srvName(parseTurnUri('turn:turn.example?transport=tcp'))).toBe('_turn._tcp.turn.example');
    expect(srvName(parseTurnUri('turns:turn.example'))).toBe('_turns._tcp.turn.example');
    expect(resolutionPlan(parseTurnUri('turn:192.0.2.1'))).toEqual({ kind: 'literal', address: '192.0.2.1', port: 3478 });
    expect(resolutionPlan(parseTurnUri('turn:turn.example:9999'))).toEqual({ kind: 'host', host: 'turn.example', port: 9999 });
    expect(resolutionPlan(parseTurnUri('turns:turn.example'))).toEqual({ kind: 'srv', name: '_turns._tcp.turn.example', host: 'turn.example', fallbackPort: 5349 });
  });

  it('orders SRV records by priority, then weighted-randomly within a priority (RFC 2782)', () => {
    const recs: SrvRecord[] = [
      { name: 'c', port: 3, priority: 20, weight: 0 },
      { name: 'a', port: 1, priority: 10, weight: 90 },
      { name: 'b', port: 2, priority: 10, weight: 10 },
    ];
    const random = seededRandom(7);
    let aFirst = 0;
    for (let i = 0; i < 2000; i++) {
      const o = orderSrvRecords(recs, random);
      expect(o.map((r) => r.name).sort()).toEqual(['a', 'b', 'c']);
      expect(o[2]!.name).toBe('c');
      if (o[0]!.name === 'a') aFirst++;
    }
    // ~90 % expected; wide bounds keep this deterministic seed robust.
    expect(aFirst).toBeGreaterThan(1600);
    expect(aFirst).toBeLessThan(1950);
    expect(orderSrvRecords([{ name: '.', port: 0, priority: 0, weight: 0 }], random)).toEqual([]);
  });

  it('resolves through an injected resolver: SRV targets in order, fallback to A/AAAA on the default port', async () => {
    const calls: string[] = [];
    const fake: TurnDnsResolver = {
      async resolveSrv(name) {
        calls.push(`srv ${name}`);
        if (name === '_turns._tcp.srv.example') {
          return [
            { name: 'second.example', port: 5001, priority: 2, weight: 0 },
            { name: 'first.example', port: 5000, priority: 1, weight: 0 },
          ];
        }
        throw new Error('ENODATA');
      },
      async lookup(host) {
        calls.push(`lookup ${host}`);
        if (host === 'first.example') return ['192.0.2.10', '2001:db8::10'];
        if (host === 'second.example') return ['192.0.2.11'];
        if (host === 'plain.example') return ['192.0.2.12'];
        throw new Error('ENOTFOUND');
      },
    };
    const r = seededRandom(1);
    expect(await resolveTurnServers(parseTurnUri('turns:srv.example'), fake, r)).toEqual([
      { address: '192.0.2.10', port: 5000, transport: 'tls', hostname: 'srv.example' },
      { address: '2001:db8::10', port: 5000, transport: 'tls', hostname: 'srv.example' },
      { address: '192.0.2.11', port: 5001, transport: 'tls', hostname: 'srv.example' },
    ]);
    expect(await resolveTurnServers(parseTurnUri('turn:plain.example'), fake, r)).toEqual([
      { address: '192.0.2.12', port: 3478, transport: 'udp', hostname: 'plain.example' },
    ]);
    calls.length = 0;
    expect(await resolveTurnServers(parseTurnUri('turn:plain.example:1?transport=tcp'), fake, r)).toEqual([
      { address: '192.0.2.12', port: 1, transport: 'tcp', hostname: 'plain.example' },
    ]);
    expect(calls).toEqual(['lookup plain.example']);
    expect(await resolveTurnServers(parseTurnUri('turn:missing.example'), fake, r)).toEqual([]);
    calls.length = 0;
    expect(await resolveTurnServers(parseTurnUri('turn:[::1]'), fake, r)).toEqual([{ address: '::1', port: 3478, transport: 'udp', hostname: '::1' }]);
    expect(calls).toEqual([]);
  });
});
