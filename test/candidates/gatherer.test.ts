import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LocalCandidate } from '../../src/candidates/candidate.js';
import {
  Gatherer,
  type GathererEvent,
  type GathererOptions,
  type RelayAllocationRequest,
  type RelayAllocator,
} from '../../src/candidates/gatherer.js';
import { formatCandidate, isUuidMdnsName, parseCandidate } from '../../src/candidates/grammar.js';
import { MdnsResponder } from '../../src/candidates/mdns.js';
import { signalledCandidate } from '../../src/candidates/signal.js';
import { splitPriority } from '../../src/candidates/priority.js';
import { InvalidStateError } from '../../src/errors.js';
import { Attr, attr, decodeStunMessage, encodeStunMessage, StunMethod } from '../../src/stun/index.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

const STUN_A: TransportAddress = { address: '127.0.0.10', port: 3478 };
const STUN_B: TransportAddress = { address: '127.0.0.11', port: 3478 };
const BASE4: TransportAddress = { address: '127.0.0.1', port: 40000 };
const BASE4B: TransportAddress = { address: '127.0.0.2', port: 40002 };
const BASE6: TransportAddress = { address: '::1', port: 40001 };

/** Drains a machine the way an edge would. */
function drain(g: Gatherer): { sent: Datagram[]; events: GathererEvent[] } {
  const sent: Datagram[] = [];
  const events: GathererEvent[] = [];
  for (let d = g.pollTransmit(); d; d = g.pollTransmit()) sent.push(d);
  for (let e = g.pollEvent(); e; e = g.pollEvent()) events.push(e);
  return { sent, events };
}

/** A scripted STUN server reply: XOR-MAPPED-ADDRESS = `mapped`, sent from the request's remote to its local. */
function reply(request: Datagram, mapped: TransportAddress, cls: 'success' | 'error' = 'success'): Datagram {
  const m = decodeStunMessage(request.data);
  expect(m.method).toBe(StunMethod.Binding);
  expect(m.cls).toBe('request');
  const attributes =
    cls === 'success'
      ? [attr(Attr.XOR_MAPPED_ADDRESS, mapped, m.transactionId)]
      : [attr(Attr.ERROR_CODE, { code: 500, reason: 'Server Error' }, m.transactionId)];
  const data = encodeStunMessage({ method: StunMethod.Binding, cls, transactionId: m.transactionId, attributes });
  return { local: request.local, remote: request.remote, data };
}

const candidates = (events: GathererEvent[]) =>
  events.flatMap((e) => (e.type === 'candidate' ? [e.candidate] : []));
const types = (events: GathererEvent[]) => events.map((e) => e.type);

function make(over: Partial<GathererOptions> = {}): Gatherer {
  return new Gatherer({ random: new SeededRandom('gatherer'), bases: [{ address: BASE4, component: 1 }], ...over });
}

describe('Gatherer: host only', () => {
  it('announces host candidates at once and completes', () => {
    const g = make({ bases: [{ address: BASE4, component: 1 }, { address: BASE6, component: 1 }, { address: BASE4, component: 2 }] });
    expect(g.state).toBe('new');
    g.start(0);
    const { sent, events } = drain(g);
    expect(sent).toEqual([]);
    expect(types(events)).toEqual(['state', 'candidate', 'candidate', 'candidate', 'end-of-candidates', 'state']);
    expect(events[0]).toEqual({ type: 'state', state: 'gathering' });
    expect(events.at(-1)).toEqual({ type: 'state', state: 'complete' });
    const cs = candidates(events);
    expect(cs.map((c) => [c.type, c.address, c.port, c.component])).toEqual([
      ['host', '127.0.0.1', 40000, 1],
      ['host', '::1', 40001, 1],
      ['host', '127.0.0.1', 40000, 2],
    ]);
    for (const c of cs) {
      expect(c.base).toEqual({ address: c.address, port: c.port });
      expect(c.socket).toEqual(c.base);
      expect(splitPriority(c.priority).typePreference).toBe(126);
      // Every gathered candidate survives the grammar.
      expect(parseCandidate(formatCandidate(c))).toMatchObject({ address: c.address, priority: c.priority });
    }
    // RFC 8421: IPv6 first.
    expect(cs[1]!.priority).toBeGreaterThan(cs[0]!.priority);
    expect(cs[0]!.foundation).toBe(cs[2]!.foundation);
    expect(cs[0]!.foundation).not.toBe(cs[1]!.foundation);
    expect(g.pollTimeout()).toBeUndefined();
    expect(() => g.start(1)).toThrow(InvalidStateError);
  });

  it('rejects TURN servers without an allocator', () => {
    expect(() => make({ turnServers: [{ server: STUN_A }] })).toThrow(InvalidStateError);
  });
});

describe('Gatherer: server-reflexive (virtual time)', () => {
  it('sends one Binding request per base and same-family server and trickles srflx candidates', () => {
    const g = make({
      bases: [{ address: BASE4, component: 1 }, { address: BASE6, component: 1 }],
      stunServers: [STUN_A, STUN_B],
      software: 'icewire-test',
    });
    g.start(1000);
    const first = drain(g);
    expect(types(first.events)).toEqual(['state', 'candidate', 'candidate']);
    // RFC 8445 §5.1.1.2: one new transaction per Ta (50 ms).
    expect(first.sent).toHaveLength(1);
    expect(g.pollTimeout()).toBe(1050);
    g.handleTimeout(1049);
    expect(drain(g).sent).toHaveLength(0);
    g.handleTimeout(1050);
    first.sent.push(...drain(g).sent);
    // Only the IPv4 base talks to the IPv4 servers.
    expect(first.sent.map((d) => [d.local, d.remote])).toEqual([
      [BASE4, STUN_A],
      [BASE4, STUN_B],
    ]);
    expect(g.state).toBe('gathering');
    // Next: the first request's retransmission (RTO 500 ms).
    expect(g.pollTimeout()).toBe(1500);

    expect(g.handleReceive(1010, reply(first.sent[0]!, { address: '203.0.113.5', port: 61000 }))).toBe(true);
    const srflxA = candidates(drain(g).events);
    expect(srflxA).toHaveLength(1);
    expect(srflxA[0]).toMatchObject({
      type: 'srflx',
      address: '203.0.113.5',
      port: 61000,
      relatedAddress: '127.0.0.1',
      relatedPort: 40000,
      base: BASE4,
      socket: BASE4,
    });
    expect(splitPriority(srflxA[0]!.priority).typePreference).toBe(100);
    expect(g.state).toBe('gathering');

    // Server B maps to another port: a distinct candidate, different foundation (different server IP), lower slot.
    g.handleReceive(1020, reply(first.sent[1]!, { address: '203.0.113.5', port: 61001 }));
    const rest = drain(g);
    expect(types(rest.events)).toEqual(['candidate', 'end-of-candidates', 'state']);
    const srflxB = candidates(rest.events)[0]!;
    expect(srflxB.foundation).not.toBe(srflxA[0]!.foundation);
    expect(srflxB.priority).toBeLessThan(srflxA[0]!.priority);
    expect(g.state).toBe('complete');
    expect(g.stats.bindingRequests).toBe(2);
  });

  it('drops a srflx equal to its host candidate (not behind a NAT) and ignores stray packets', () => {
    const g = make({ stunServers: [STUN_A] });
    g.start(0);
    const { sent } = drain(g);
    // Unrelated STUN and non-STUN traffic is not the gatherer's.
    expect(g.handleReceive(1, { local: BASE4, remote: STUN_A, data: new Uint8Array([1, 2, 3]) })).toBe(false);
    const stranger = encodeStunMessage({ method: StunMethod.Binding, cls: 'success', transactionId: new Uint8Array(12), attributes: [] });
    expect(g.handleReceive(1, { local: BASE4, remote: STUN_A, data: stranger })).toBe(false);
    // Our transaction, wrong source: taken and dropped, transaction still open.
    const spoof = reply(sent[0]!, { address: '198.51.100.1', port: 1 });
    expect(g.handleReceive(2, { ...spoof, remote: { address: '127.0.0.99', port: 3478 } })).toBe(true);
    expect(g.stats.droppedResponses).toBe(1);
    expect(g.state).toBe('gathering');
    g.handleReceive(3, reply(sent[0]!, BASE4));
    const { events } = drain(g);
    expect(candidates(events)).toEqual([]);
    expect(g.stats.redundant).toBe(1);
    expect(g.state).toBe('complete');
    expect(g.candidates.map((c) => c.type)).toEqual(['host']);
  });

  it('an error response fails that server only', () => {
    const g = make({ stunServers: [STUN_A] });
    g.start(0);
    const { sent } = drain(g);
    g.handleReceive(5, reply(sent[0]!, BASE4, 'error'));
    const { events } = drain(g);
    expect(events).toEqual([
      { type: 'server-failed', kind: 'stun', server: STUN_A, base: BASE4, reason: 'error response 500 Server Error' },
      { type: 'end-of-candidates' },
      { type: 'state', state: 'complete' },
    ]);
  });

  it('a STUN server that never answers delays completion by at most gatherTimeoutMs (virtual time)', () => {
    const g = make({ stunServers: [STUN_A], gatherTimeoutMs: 2000 });
    g.start(10_000);
    const sends: number[] = [];
    let out = drain(g);
    sends.push(...out.sent.map(() => 10_000));
    let now = 10_000;
    let guard = 0;
    while (g.state === 'gathering') {
      const t = g.pollTimeout();
      expect(t).toBeDefined();
      expect(t!).toBeGreaterThan(now);
      now = t!;
      g.handleTimeout(now);
      out = drain(g);
      sends.push(...out.sent.map(() => now));
      if (++guard > 50) throw new Error('no progress');
    }
    // RFC 8489 §6.2.1 retransmissions at 0, 500, 1500 ms, then cut off by the 2000 ms bound.
    expect(sends).toEqual([10_000, 10_500, 11_500]);
    expect(now).toBe(12_000);
    expect(types(out.events)).toEqual(['server-failed', 'end-of-candidates', 'state']);
    expect(out.events[0]).toMatchObject({ reason: 'gather timeout' });
    expect(g.pollTimeout()).toBeUndefined();
  });

  it('a short transaction timing fails before the bound', () => {
    const g = make({ stunServers: [STUN_A], gatherTimeoutMs: 10_000, stunTiming: { rtoMs: 100, rc: 2, rm: 2 } });
    g.start(0);
    drain(g);
    g.handleTimeout(100);
    expect(drain(g).sent).toHaveLength(1);
    g.handleTimeout(300);
    const { events } = drain(g);
    expect(events[0]).toMatchObject({ type: 'server-failed', reason: 'timeout' });
    expect(g.state).toBe('complete');
  });

  it('with mDNS, host candidates carry the name and srflx hides the related address', () => {
    const names = new Map<string, string>();
    const mdns = {
      register: (_now: number, address: string) => {
        if (!names.has(address)) names.set(address, `${'0'.repeat(8)}-0000-4000-8000-${String(names.size).padStart(12, '0')}.local`);
        return names.get(address)!;
      },
    };
    const g = make({ stunServers: [STUN_A], mdns, bases: [{ address: BASE4, component: 1 }, { address: BASE4, component: 2 }] });
    g.start(0);
    const first = drain(g);
    const hosts = candidates(first.events);
    expect(hosts.map((h) => h.mdnsName)).toEqual([names.get('127.0.0.1'), names.get('127.0.0.1')]);
    expect(hosts[0]!.address).toBe('127.0.0.1');
    g.handleReceive(1, reply(first.sent[0]!, BASE4));
    const srflx = candidates(drain(g).events);
    // draft §3.1.2.2: not redundant with the mDNS host candidate, raddr 0.0.0.0 rport 9.
    expect(srflx).toHaveLength(1);
    expect(srflx[0]).toMatchObject({ type: 'srflx', relatedAddress: '0.0.0.0', relatedPort: 9 });
  });
});

/** A fake allocator recording requests. */
class FakeAllocator implements RelayAllocator {
  readonly requests: RelayAllocationRequest[] = [];
  readonly cancelled: string[] = [];
  allocate(_now: number, request: RelayAllocationRequest): void {
    this.requests.push(request);
  }
  cancel(_now: number, id: string): void {
    this.cancelled.push(id);
  }
}

describe('Gatherer with the MdnsResponder as registrar', () => {
  it('signals uuid .local host candidates, one name per address', () => {
    const mdns = new MdnsResponder({ random: new SeededRandom('m'), local: { address: '0.0.0.0', port: 5353 } });
    const g = make({ mdns, bases: [{ address: BASE4, component: 1 }, { address: BASE4, component: 2 }, { address: BASE6, component: 1 }] });
    g.start(0);
    const hosts = candidates(drain(g).events);
    const signalled = hosts.map(signalledCandidate);
    expect(signalled.every((c) => isUuidMdnsName(c.address))).toBe(true);
    expect(signalled[0]!.address).toBe(signalled[1]!.address);
    expect(signalled[2]!.address).not.toBe(signalled[0]!.address);
    expect(mdns.registrations.get(signalled[0]!.address)).toBe('127.0.0.1');
    expect(mdns.registrations.get(signalled[2]!.address)).toBe('::1');
    // What is signalled parses back to the same record.
    for (const c of signalled) expect(parseCandidate(formatCandidate(c))).toEqual(c);
    expect(signalled[0]).not.toHaveProperty('base');
    // The responder announces the names once its first-announcement delay has passed.
    expect(mdns.pollTransmit()).toBeUndefined();
    mdns.handleTimeout(mdns.pollTimeout()!);
    expect(mdns.pollTransmit()).toBeDefined();
  });
});

describe('Gatherer: relayed candidates through RelayAllocator', () => {
  const TURN1 = { server: { address: '127.0.0.20', port: 3478 }, username: 'u', credential: 'p' };
  const TURN2 = { server: { address: '127.0.0.21', port: 3478 } };

  it('creates relay candidates with the mapped address as related address', () => {
    const alloc = new FakeAllocator();
    const g = make({ turnServers: [TURN1, TURN2], relayAllocator: alloc, taMs: 0, bases: [{ address: BASE4, component: 1 }, { address: BASE4B, component: 1 }] });
    g.start(0);
    drain(g);
    expect(alloc.requests.map((r) => [r.base, r.server.server.address])).toEqual([
      [BASE4, '127.0.0.20'],
      [BASE4, '127.0.0.21'],
      [BASE4B, '127.0.0.20'],
      [BASE4B, '127.0.0.21'],
    ]);
    expect(alloc.requests[0]!.server).toBe(TURN1);
    const mapped = { address: '198.51.100.7', port: 50000 };
    expect(g.relayResult(1, alloc.requests[0]!.id, { ok: true, relayed: { address: '203.0.113.50', port: 60000 }, mapped })).toBe(true);
    expect(g.relayResult(1, 'nope', { ok: false, reason: 'x' })).toBe(false);
    g.relayResult(2, alloc.requests[1]!.id, { ok: true, relayed: { address: '203.0.113.51', port: 60001 }, mapped });
    g.relayResult(3, alloc.requests[2]!.id, { ok: true, relayed: { address: '203.0.113.50', port: 60002 }, mapped });
    g.relayResult(4, alloc.requests[3]!.id, { ok: false, reason: '401 Unauthorized' });
    const { events } = drain(g);
    const relays = candidates(events).filter((c) => c.type === 'relay');
    expect(relays).toHaveLength(3);
    // RFC 8445 §5.1.1.2: the Allocate's mapped address is a server-reflexive candidate too; the second one for
    // BASE4 (same mapped address, same base) is redundant.
    const srflx = candidates(events).filter((c) => c.type === 'srflx');
    expect(srflx.map((c) => [c.address, c.port, c.base])).toEqual([
      ['198.51.100.7', 50000, BASE4],
      ['198.51.100.7', 50000, BASE4B],
    ]);
    expect(srflx[0]!.relatedAddress).toBe(BASE4.address);
    const [r1, r2, r3] = relays as [LocalCandidate, LocalCandidate, LocalCandidate];
    expect(r1).toMatchObject({
      type: 'relay',
      address: '203.0.113.50',
      port: 60000,
      relatedAddress: '198.51.100.7',
      relatedPort: 50000,
      base: { address: '203.0.113.50', port: 60000 },
      socket: BASE4,
      relayServer: TURN1.server,
    });
    expect(splitPriority(r1.priority).typePreference).toBe(0);
    // Same relayed IP and same server: same foundation; another server: another foundation.
    expect(r3.foundation).toBe(r1.foundation);
    expect(r2.foundation).not.toBe(r1.foundation);
    expect(new Set(relays.map((r) => r.priority)).size).toBe(3);
    expect(types(events).slice(-3)).toEqual(['server-failed', 'end-of-candidates', 'state']);
    expect(g.state).toBe('complete');
  });

  it('paces allocations by Ta, discards a relay equal to a host candidate, falls back to Binding on 508', () => {
    const alloc = new FakeAllocator();
    const g = make({ turnServers: [TURN1, TURN2], relayAllocator: alloc });
    g.start(0);
    drain(g);
    expect(alloc.requests).toHaveLength(1);
    g.handleTimeout(50);
    expect(alloc.requests).toHaveLength(2);
    // A relayed address equal to the host candidate (rare, RFC 8445 §5.1.1.2) is dropped.
    g.relayResult(60, alloc.requests[0]!.id, { ok: true, relayed: BASE4, mapped: BASE4 });
    expect(candidates(drain(g).events)).toEqual([]);
    // Out of capacity: a Binding request goes to that server instead, at the next Ta slot.
    g.relayResult(70, alloc.requests[1]!.id, { ok: false, reason: '508 Insufficient Capacity', insufficientCapacity: true });
    expect(drain(g).events.map((e) => e.type)).toEqual(['server-failed']);
    expect(g.pollTimeout()).toBe(100);
    g.handleTimeout(100);
    const { sent } = drain(g);
    expect(sent.map((d) => d.remote)).toEqual([TURN2.server]);
    g.handleReceive(110, reply(sent[0]!, { address: '203.0.113.9', port: 1234 }));
    const out = drain(g);
    expect(candidates(out.events).map((c) => [c.type, c.address])).toEqual([['srflx', '203.0.113.9']]);
    expect(g.state).toBe('complete');
  });

  it('a TCP allocation gives no UDP server-reflexive candidate', () => {
    const alloc = new FakeAllocator();
    const g = make({ turnServers: [{ server: TURN1.server, transport: 'tcp' }], relayAllocator: alloc });
    g.start(0);
    drain(g);
    g.relayResult(1, alloc.requests[0]!.id, { ok: true, relayed: { address: '203.0.113.50', port: 60000 }, mapped: { address: '198.51.100.7', port: 50000 } });
    const cs = candidates(drain(g).events);
    expect(cs.map((c) => c.type)).toEqual(['relay']);
    // The TURN transport is part of the foundation (RFC 8445 §5.1.1.3), the relayed candidate itself is UDP.
    expect(cs[0]!.transport).toBe('udp');
  });

  it('abandons allocations at the bound and cancels them', () => {
    const alloc = new FakeAllocator();
    const g = make({ turnServers: [TURN1], relayAllocator: alloc, gatherTimeoutMs: 3000 });
    g.start(0);
    drain(g);
    expect(g.pollTimeout()).toBe(3000);
    g.handleTimeout(3000);
    const { events } = drain(g);
    expect(types(events)).toEqual(['server-failed', 'end-of-candidates', 'state']);
    expect(alloc.cancelled).toEqual([alloc.requests[0]!.id]);
    // A late result is ignored.
    expect(g.relayResult(4000, alloc.requests[0]!.id, { ok: true, relayed: STUN_A, mapped: STUN_B })).toBe(false);
  });
});

describe('Gatherer: properties', () => {
  it('priorities are unique per component and every candidate formats', () => {
    const ipv4 = fc.integer({ min: 1, max: 200 }).map((n) => `127.0.${n}.1`);
    const ipv6 = fc.integer({ min: 1, max: 0xfff }).map((n) => `2001:db8::${n.toString(16)}`);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.oneof(ipv4, ipv6), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 2 }),
        fc.boolean(),
        (ips, components, nStun, nTurn, natted) => {
          const bases = ips.flatMap((address, i) =>
            Array.from({ length: components }, (_, c) => ({ address: { address, port: 10_000 + i * 2 + c }, component: c + 1 })),
          );
          const stun = Array.from({ length: nStun }, (_, i) => ({ address: i % 2 ? `2001:db8:1::${i}` : `127.1.0.${i + 1}`, port: 3478 }));
          const turn = Array.from({ length: nTurn }, (_, i) => ({ server: { address: i % 2 ? `2001:db8:2::${i}` : `127.2.0.${i + 1}`, port: 3478 } }));
          const alloc = new FakeAllocator();
          const g = new Gatherer({ random: new SeededRandom(ips.join()), bases, stunServers: stun, turnServers: turn, relayAllocator: alloc, taMs: 0 });
          g.start(0);
          const { sent } = drain(g);
          let port = 50_000;
          for (const d of sent) g.handleReceive(1, reply(d, natted ? { address: '203.0.113.1', port: port++ } : d.local));
          for (const r of alloc.requests) g.relayResult(2, r.id, { ok: true, relayed: { address: '203.0.113.2', port: port++ }, mapped: { address: '203.0.113.1', port: port++ } });
          const all = g.candidates;
          expect(g.state).toBe('complete');
          for (let comp = 1; comp <= components; comp++) {
            const ps = all.filter((c) => c.component === comp).map((c) => c.priority);
            expect(new Set(ps).size).toBe(ps.length);
          }
          for (const c of all) expect(parseCandidate(formatCandidate(c)).priority).toBe(c.priority);
          // Type preference order: every host outranks every srflx outranks every relay.
          const byType = (t: string) => all.filter((c) => c.type === t).map((c) => c.priority);
          if (byType('srflx').length) expect(Math.min(...byType('host'))).toBeGreaterThan(Math.max(...byType('srflx')));
          if (byType('relay').length) expect(Math.min(...byType('host'))).toBeGreaterThan(Math.max(...byType('relay')));
        },
      ),
      { numRuns: 100 },
    );
  });
});
