import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { isUuidMdnsName } from '../../src/candidates/grammar.js';
import { MDNS_IPV4_GROUP, MdnsResponder, uuidV4, type MdnsEvent, type MdnsResponderOptions } from '../../src/candidates/mdns.js';
import { MdnsSocket, type MdnsSocketOptions } from '../../src/node/mdns-socket.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { Datagram } from '../../src/types.js';

const A_LOCAL = { address: '127.0.0.1', port: 5353 };
const B_LOCAL = { address: '127.0.0.2', port: 5353 };

function responder(seed: string, local = A_LOCAL, over: Partial<MdnsResponderOptions> = {}): MdnsResponder {
  return new MdnsResponder({ random: new SeededRandom(seed), local, ...over });
}

function drainAll(m: MdnsResponder): { sent: Datagram[]; events: MdnsEvent[] } {
  const sent: Datagram[] = [];
  const events: MdnsEvent[] = [];
  for (let d = m.pollTransmit(); d; d = m.pollTransmit()) sent.push(d);
  for (let e = m.pollEvent(); e; e = m.pollEvent()) events.push(e);
  return { sent, events };
}

/** A virtual link: multicast goes to every other member (as received from the sender's socket), unicast to its target. */
function deliver(now: number, from: MdnsResponder, members: MdnsResponder[], sent: Datagram[]): void {
  for (const d of sent) {
    for (const m of members) {
      if (m === from) continue;
      const mLocal = localOf.get(m)!;
      const isGroup = d.remote.address === MDNS_IPV4_GROUP.address;
      if (isGroup || (d.remote.address === mLocal.address && d.remote.port === mLocal.port)) {
        m.handleReceive(now, { local: mLocal, remote: d.local, data: d.data });
      }
    }
  }
}
const localOf = new Map<MdnsResponder, { address: string; port: number }>();

describe('MdnsResponder (sans-IO)', () => {
  it('makes version 4 UUID names, one per address', () => {
    const r = responder('names');
    const n1 = r.register(0, '192.168.1.10');
    expect(isUuidMdnsName(n1)).toBe(true);
    expect(r.register(0, '192.168.1.10')).toBe(n1);
    const n2 = r.register(0, '2001:db8::10');
    expect(n2).not.toBe(n1);
    expect(r.registrations.get(n1)).toBe('192.168.1.10');
    expect(() => r.register(0, 'x.local')).toThrow(RangeError);
    for (let i = 0; i < 50; i++) expect(uuidV4(new SeededRandom(i))).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('announces twice, one second apart, with the cache-flush bit, the first after announceDelayMs (3 s)', () => {
    const r = responder('announce');
    const name = r.register(100, '10.0.0.5');
    expect(drainAll(r).sent).toEqual([]);
    expect(r.pollTimeout()).toBe(3100);
    r.handleTimeout(3100);
    let { sent } = drainAll(r);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.remote).toEqual(MDNS_IPV4_GROUP);
    const p = dnsPacket.decode(Buffer.from(sent[0]!.data));
    expect(p.type).toBe('response');
    expect(p.flag_aa).toBe(true);
    expect(p.answers).toEqual([{ type: 'A', name, ttl: 120, class: 'IN', flush: true, data: '10.0.0.5' }]);
    expect(r.pollTimeout()).toBe(4100);
    r.handleTimeout(4100);
    ({ sent } = drainAll(r));
    expect(sent).toHaveLength(1);
    expect(r.pollTimeout()).toBeUndefined();
  });

  it('one responder registers, another resolves over a virtual link (QU answered by unicast)', () => {
    // Announced at once: a QU question is answered by unicast only for a record multicast lately (RFC 6762 §5.4).
    const a = responder('a', A_LOCAL, { announceDelayMs: 0 });
    const b = responder('b', B_LOCAL);
    localOf.set(a, A_LOCAL).set(b, B_LOCAL);
    const name = a.register(0, '192.168.1.10');
    drainAll(a); // announcement not delivered: b has to ask
    b.resolve(10, name, [4]);
    const q = drainAll(b).sent;
    expect(q).toHaveLength(1);
    const query = dnsPacket.decode(Buffer.from(q[0]!.data));
    expect(query.questions?.map((x) => [x.type, x.class])).toEqual([['A', 'UNKNOWN_32769']]);
    deliver(11, b, [a, b], q);
    const ans = drainAll(a).sent;
    expect(ans).toHaveLength(1);
    expect(ans[0]!.remote).toEqual(B_LOCAL); // unicast back (RFC 6762 §5.4)
    deliver(12, a, [a, b], ans);
    expect(drainAll(b).events).toEqual([{ type: 'resolved', name, address: '192.168.1.10' }]);
    // Cached now.
    b.resolve(13, name.toUpperCase());
    expect(drainAll(b)).toEqual({ sent: [], events: [{ type: 'resolved', name: name.toUpperCase(), address: '192.168.1.10' }] });
  });

  it('multicasts answers to QM queries and skips known answers', () => {
    const a = responder('a2', A_LOCAL);
    const name = a.register(0, '10.1.1.1');
    drainAll(a);
    const qm = dnsPacket.encode({ type: 'query', id: 0, questions: [{ type: 'A', name }] });
    // 1 s after the announcement: RFC 6762 §6 forbids multicasting the record again sooner.
    a.handleReceive(1000, { local: A_LOCAL, remote: B_LOCAL, data: qm });
    expect(drainAll(a).sent.map((d) => d.remote)).toEqual([MDNS_IPV4_GROUP]);
    const known = dnsPacket.encode({
      type: 'query',
      id: 0,
      questions: [{ type: 'A', name }],
      answers: [{ type: 'A', name, ttl: 100, data: '10.1.1.1' }],
    });
    a.handleReceive(2000, { local: A_LOCAL, remote: B_LOCAL, data: known });
    expect(drainAll(a).sent).toEqual([]);
    // Wrong family: no AAAA for an IPv4 name.
    a.handleReceive(3000, { local: A_LOCAL, remote: B_LOCAL, data: dnsPacket.encode({ type: 'query', id: 0, questions: [{ type: 'AAAA', name }] }) });
    expect(drainAll(a).sent).toEqual([]);
  });

  it('answers a legacy one-shot query by unicast with its id and a short TTL (RFC 6762 §6.7)', () => {
    const a = responder('legacy');
    const name = a.register(0, '10.2.2.2');
    drainAll(a);
    const q = dnsPacket.encode({ type: 'query', id: 4242, questions: [{ type: 'A', name }] });
    a.handleReceive(1, { local: A_LOCAL, remote: { address: '127.0.0.9', port: 40000 }, data: q });
    const { sent } = drainAll(a);
    expect(sent[0]!.remote).toEqual({ address: '127.0.0.9', port: 40000 });
    const p = dnsPacket.decode(Buffer.from(sent[0]!.data));
    expect(p.id).toBe(4242);
    expect(p.questions).toHaveLength(1);
    expect(p.answers?.[0]).toMatchObject({ ttl: 10, flush: false, data: '10.2.2.2' });
  });

  it('retransmits then reports unresolved after the bound (virtual time)', () => {
    const b = responder('timeout', B_LOCAL, { resolveTimeoutMs: 4000 });
    const name = '1f4712db-ea17-4bcf-a596-105139dfd8bf.local';
    b.resolve(0, name);
    const sends: number[] = [];
    let events: MdnsEvent[] = [];
    let now = 0;
    sends.push(...drainAll(b).sent.map(() => 0));
    for (let guard = 0; guard < 10; guard++) {
      const t = b.pollTimeout();
      if (t === undefined) break;
      now = t;
      b.handleTimeout(now);
      const out = drainAll(b);
      sends.push(...out.sent.map(() => now));
      events = events.concat(out.events);
    }
    expect(sends).toEqual([0, 0, 1000, 1000, 3000, 3000]); // A and AAAA, separately
    expect(now).toBe(4000);
    expect(events).toEqual([{ type: 'unresolved', name, reason: 'timeout' }]);
  });

  it('refuses names not in the draft form, resolves own names, flags ambiguous answers, and drops junk', () => {
    const b = responder('misc', B_LOCAL);
    b.resolve(0, 'printer.local');
    const own = b.register(0, '10.3.3.3');
    b.resolve(0, own);
    expect(drainAll(b).events).toEqual([
      { type: 'unresolved', name: 'printer.local', reason: 'invalid-name' },
      { type: 'resolved', name: own, address: '10.3.3.3' },
    ]);
    const name = '2579ef4b-50ae-4bfe-95af-70b3376ecb9c.local';
    b.resolve(1, name);
    drainAll(b);
    const two = dnsPacket.encode({
      type: 'response',
      id: 0,
      answers: [
        { type: 'A', name, ttl: 120, data: '10.0.0.1' },
        { type: 'A', name, ttl: 120, data: '10.0.0.2' },
      ],
    });
    expect(b.handleReceive(2, { local: B_LOCAL, remote: A_LOCAL, data: two })).toBe(true);
    expect(drainAll(b).events).toEqual([{ type: 'unresolved', name, reason: 'ambiguous' }]);
    expect(b.handleReceive(3, { local: B_LOCAL, remote: A_LOCAL, data: new Uint8Array([1, 2, 3]) })).toBe(false);
    expect(b.stats.malformed).toBe(1);
  });

  it('sends a goodbye on close', () => {
    const a = responder('bye');
    const name = a.register(0, '10.4.4.4');
    drainAll(a);
    a.close(5);
    const { sent } = drainAll(a);
    const p = dnsPacket.decode(Buffer.from(sent[0]!.data));
    expect(p.answers?.[0]).toMatchObject({ name, ttl: 0 });
    expect(a.pollTimeout()).toBeUndefined();
  });
});

describe('MdnsSocket: round trip over loopback multicast', () => {
  // A private port on loopback only: nothing reaches the system's mDNS daemon or the LAN.
  const common = () => ({ port: 20000 + Math.floor(Math.random() * 30000), interfaceAddress: '127.0.0.1', resolveTimeoutMs: 800, queryIntervalMs: 200 });

  /** Opens two sockets on one random port; another port is tried if that one is taken (bounded). */
  async function openPair(a: MdnsSocketOptions = {}, b: MdnsSocketOptions = {}): Promise<[MdnsSocket, MdnsSocket]> {
    for (let attempt = 0; ; attempt++) {
      const opts = common();
      let first: MdnsSocket | undefined;
      try {
        first = await MdnsSocket.open({ ...opts, ...a });
        return [first, await MdnsSocket.open({ ...opts, ...b })];
      } catch (err) {
        await first?.close();
        if (attempt >= 4) throw err;
      }
    }
  }

  it('one responder registers a name, another resolves it by query', async () => {
    // No announcements: the resolver has to send a query and get an answer.
    const [a, b] = await openPair({ announcements: 0 });
    try {
      const name = a.register('192.0.2.77');
      expect(isUuidMdnsName(name)).toBe(true);
      const t0 = performance.now();
      await expect(b.resolve(name)).resolves.toBe('192.0.2.77');
      expect(performance.now() - t0).toBeLessThan(700);
      expect(b.responder.stats.queriesSent).toBeGreaterThanOrEqual(1);
      expect(a.responder.stats.responsesSent).toBeGreaterThanOrEqual(1);
      // An unknown name gives up within the bound.
      const t1 = performance.now();
      await expect(b.resolve('00000000-0000-4000-8000-000000000000.local')).resolves.toBeUndefined();
      const waited = performance.now() - t1;
      expect(waited).toBeGreaterThanOrEqual(700);
      expect(waited).toBeLessThan(1500);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 10_000);

  it('close settles pending resolutions with undefined and sends goodbyes', async () => {
    const [a, b] = await openPair({ announceDelayMs: 0 });
    try {
      const name = a.register('192.0.2.99');
      for (let i = 0; i < 100 && b.lookup(name) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
      expect(b.lookup(name)).toBe('192.0.2.99');
      const pending = b.resolve('11111111-1111-4111-8111-111111111111.local');
      await a.close();
      // The goodbye (TTL 0) removes the cached record (bounded wait).
      for (let i = 0; i < 100 && b.lookup(name) !== undefined; i++) await new Promise((r) => setTimeout(r, 10));
      expect(b.lookup(name)).toBeUndefined();
      await b.close();
      await expect(pending).resolves.toBeUndefined();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 10_000);

  it('an announced name is known to listeners without a query', async () => {
    const events: MdnsEvent[] = [];
    const [b, a] = await openPair({ onEvent: (e) => events.push(e) }, { announceDelayMs: 0 });
    try {
      const name = a.register('198.51.100.4');
      // The announcement arrives by multicast; poll the cache (bounded: 1 s).
      for (let i = 0; i < 100 && b.lookup(name) === undefined; i++) await new Promise((r) => setTimeout(r, 10));
      expect(b.lookup(name)).toBe('198.51.100.4');
      await expect(b.resolve(name)).resolves.toBe('198.51.100.4');
      expect(b.responder.stats.queriesSent).toBe(0);
      expect(events.some((e) => e.type === 'resolved' && e.address === '198.51.100.4')).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 10_000);
});
