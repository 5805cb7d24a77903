// The mDNS exchange captured between Chromium 156 and icewire (test/interop/icewire-chromium-mdns.test.ts, browser
// offers, descriptions on time; tcpdump in both namespaces), replayed in virtual time. Chromium announced its name
// before offering; icewire's agent was made when the offer arrived, registered its name and asked for Chromium's;
// Chromium answered, read icewire's answer, and asked for icewire's name once, with a QM question from port 5353,
// 6-16 ms after icewire's registration. That query must be answered at once: Chromium never asks again.
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { MDNS_IPV4_GROUP, MdnsResponder, type MdnsEvent, type MdnsResponderOptions } from '../../src/candidates/mdns.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { Datagram } from '../../src/types.js';

const ICEWIRE = { address: '10.213.226.2', port: 5353 };
const CHROMIUM = { address: '10.213.226.1', port: 5353 };
const CHROMIUM_NAME = 'f37f0436-1525-4e06-a0ac-bf24336faf09.local';

function drain(m: MdnsResponder): { sent: Datagram[]; events: MdnsEvent[] } {
  const sent: Datagram[] = [];
  const events: MdnsEvent[] = [];
  for (let d = m.pollTransmit(); d; d = m.pollTransmit()) sent.push(d);
  for (let e = m.pollEvent(); e; e = m.pollEvent()) events.push(e);
  return { sent, events };
}

/** Runs the timers up to `end`, recording each datagram with the time it left. */
function runUntil(m: MdnsResponder, end: number): { at: number; d: Datagram }[] {
  const out: { at: number; d: Datagram }[] = [];
  for (let guard = 0; guard < 100; guard++) {
    const t = m.pollTimeout();
    if (t === undefined || t > end) break;
    m.handleTimeout(t);
    for (let d = m.pollTransmit(); d; d = m.pollTransmit()) out.push({ at: t, d });
  }
  return out;
}

const decode = (d: Datagram) => dnsPacket.decode(Buffer.from(d.data));

/** Chromium's answer as captured: AA, id 0, the A record with cache-flush and TTL 120, an NSEC in Additional. */
const chromiumResponse = dnsPacket.encode({
  type: 'response',
  id: 0,
  flags: dnsPacket.AUTHORITATIVE_ANSWER,
  answers: [{ type: 'A', name: CHROMIUM_NAME, ttl: 120, class: 'IN', flush: true, data: CHROMIUM.address }],
  additionals: [{ type: 'NSEC', name: CHROMIUM_NAME, ttl: 120, class: 'IN', flush: true, data: { nextDomain: CHROMIUM_NAME, rrtypes: ['A'] } }],
});

/** Chromium's query as captured: id 0, no flags, one A question, QM (class IN without the unicast-response bit). */
const chromiumQuery = (name: string) => dnsPacket.encode({ type: 'query', id: 0, flags: 0, questions: [{ type: 'A', name, class: 'IN' }] });

/** icewire's Node socket: QM queries (it shares port 5353), defaults otherwise. */
function icewire(over: Partial<MdnsResponderOptions> = {}): MdnsResponder {
  return new MdnsResponder({ random: new SeededRandom('chromium-trace'), local: ICEWIRE, requestUnicastResponse: false, ...over });
}

describe('MdnsResponder against the captured Chromium exchange', () => {
  it('answers Chromium’s single QM query at once, and still announces twice, one second apart', () => {
    const m = icewire();
    const name = m.register(0, ICEWIRE.address);
    drain(m);
    m.resolve(0, CHROMIUM_NAME, [4]);
    const ask = drain(m).sent;
    expect(ask.map((d) => [d.remote, decode(d).questions?.map((q) => `${q.type}/${q.class}`)])).toEqual([[MDNS_IPV4_GROUP, ['A/IN']]]);
    m.handleReceive(1, { local: ICEWIRE, remote: CHROMIUM, data: chromiumResponse });
    expect(drain(m).events).toEqual([{ type: 'resolved', name: CHROMIUM_NAME, address: CHROMIUM.address }]);

    m.handleReceive(6, { local: ICEWIRE, remote: CHROMIUM, data: chromiumQuery(name) });
    const answer = drain(m).sent;
    expect(answer.map((d) => d.remote)).toEqual([MDNS_IPV4_GROUP]); // QM from port 5353: multicast (RFC 6762 §6)
    const p = decode(answer[0]!);
    expect(p).toMatchObject({ type: 'response', id: 0, flag_aa: true, questions: [] });
    expect(p.answers).toEqual([{ type: 'A', name, ttl: 120, class: 'IN', flush: true, data: ICEWIRE.address }]);
    expect(m.stats.rateLimited).toBe(0);

    // That answer was the first announcement; the second follows a second later, and nothing after.
    const later = runUntil(m, 60_000);
    expect(later.map((x) => [x.at, x.d.remote])).toEqual([[1006, MDNS_IPV4_GROUP]]);
    expect(decode(later[0]!.d).answers).toEqual([{ type: 'A', name, ttl: 120, class: 'IN', flush: true, data: ICEWIRE.address }]);
  });

  it('keeps the one-second rule: a second QM query right after the answer waits for the second announcement', () => {
    const m = icewire();
    const name = m.register(0, ICEWIRE.address);
    m.handleReceive(6, { local: ICEWIRE, remote: CHROMIUM, data: chromiumQuery(name) });
    expect(drain(m).sent).toHaveLength(1);
    m.handleReceive(500, { local: ICEWIRE, remote: CHROMIUM, data: chromiumQuery(name) });
    expect(drain(m).sent).toEqual([]);
    expect(m.stats.rateLimited).toBe(1);
    // One multicast at 1006 is both the second announcement and the held-back answer.
    expect(runUntil(m, 60_000).map((x) => x.at)).toEqual([1006]);
  });

  it('without a query, announces after announceDelayMs (default 3 s), then a second later', () => {
    const m = icewire();
    m.register(100, ICEWIRE.address);
    expect(m.pollTimeout()).toBe(3100);
    expect(runUntil(m, 60_000).map((x) => x.at)).toEqual([3100, 4100]);
    const now = icewire({ announceDelayMs: 0 });
    now.register(100, ICEWIRE.address);
    expect(drain(now).sent).toHaveLength(1);
    expect(runUntil(now, 60_000).map((x) => x.at)).toEqual([1100]);
  });
});
