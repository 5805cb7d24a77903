// The querier and responder rules of RFC 6762 that browsers depend on, in virtual time. Every query and answer is
// decoded with dns-packet, as a peer's stack would read it.
import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent } from '../../src/agent-machine.js';
import { MDNS_IPV4_GROUP, MdnsResponder, type MdnsEvent, type MdnsResponderOptions } from '../../src/candidates/mdns.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { Datagram } from '../../src/types.js';

const LOCAL = { address: '192.0.2.1', port: 5353 };
const PEER = { address: '192.0.2.2', port: 5353 };
const NAME = '1f4712db-ea17-4bcf-a596-105139dfd8bf.local';

function responder(over: Partial<MdnsResponderOptions> = {}): MdnsResponder {
  return new MdnsResponder({ random: new SeededRandom('rfc6762'), local: LOCAL, ...over });
}

function drain(m: MdnsResponder): { sent: Datagram[]; events: MdnsEvent[] } {
  const sent: Datagram[] = [];
  const events: MdnsEvent[] = [];
  for (let d = m.pollTransmit(); d; d = m.pollTransmit()) sent.push(d);
  for (let e = m.pollEvent(); e; e = m.pollEvent()) events.push(e);
  return { sent, events };
}

const decode = (d: Datagram) => dnsPacket.decode(Buffer.from(d.data));
const questions = (d: Datagram) => (decode(d).questions ?? []).map((q) => `${q.type}/${q.class}`);

/** Runs the machine's timers until `end`, recording every datagram with the time it left. */
function runUntil(m: MdnsResponder, from: number, end: number): { at: number; d: Datagram }[] {
  const out: { at: number; d: Datagram }[] = [];
  for (let guard = 0; guard < 1000; guard++) {
    const t = m.pollTimeout();
    if (t === undefined || t > end) break;
    m.handleTimeout(Math.max(t, from));
    for (let d = m.pollTransmit(); d; d = m.pollTransmit()) out.push({ at: Math.max(t, from), d });
  }
  return out;
}

function query(name: string, type: 'A' | 'AAAA', qu = false): Uint8Array {
  const buf = dnsPacket.encode({ type: 'query', id: 0, questions: [{ type, name, class: 'IN' }] });
  if (qu) buf[buf.length - 2]! |= 0x80;
  return buf;
}

describe('MdnsResponder as a querier (RFC 6762 §5)', () => {
  it('asks one question per query, only for the families asked, QU on the first query only', () => {
    const m = responder();
    m.resolve(0, NAME, [4]);
    const first = drain(m).sent;
    expect(first.map(questions)).toEqual([['A/UNKNOWN_32769']]);
    expect(first[0]!.remote).toEqual(MDNS_IPV4_GROUP);
    expect(decode(first[0]!)).toMatchObject({ type: 'query', id: 0 });
    // The retransmission is a plain QM question (RFC 6762 §5.4).
    const again = runUntil(m, 0, 1000);
    expect(again.map((x) => [x.at, questions(x.d)])).toEqual([[1000, ['A/IN']]]);

    const both = responder();
    both.resolve(0, NAME, [4, 6]);
    expect(drain(both).sent.map(questions)).toEqual([['A/UNKNOWN_32769'], ['AAAA/UNKNOWN_32769']]);

    const v6 = responder({ requestUnicastResponse: false });
    v6.resolve(0, NAME, [6]);
    expect(drain(v6).sent.map(questions)).toEqual([['AAAA/IN']]);
  });

  it('asks again 1 s later, then at doubling intervals, until the deadline (default 8 s), then gives up', () => {
    const m = responder();
    m.resolve(0, NAME, [4]);
    expect(drain(m).sent).toHaveLength(1);
    const sends = [0, ...runUntil(m, 0, 60_000).map((x) => x.at)];
    // RFC 6762 §5.2: at least one second between the first two queries, then at least doubling.
    expect(sends).toEqual([0, 1000, 3000, 7000]);
    expect(drain(m).events).toEqual([{ type: 'unresolved', name: NAME, reason: 'timeout' }]);
    expect(m.pollTimeout()).toBeUndefined();
  });

  it('stops asking once an answer arrives, and a family added by a second resolve joins the next query', () => {
    const m = responder();
    m.resolve(0, NAME, [4]);
    drain(m);
    m.resolve(500, NAME, [6]);
    expect(drain(m).sent).toEqual([]); // no burst: the running resolution takes the family on
    expect(runUntil(m, 0, 1000).map((x) => questions(x.d))).toEqual([['A/IN'], ['AAAA/IN']]);
    const answer = dnsPacket.encode({ type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, answers: [{ type: 'A', name: NAME, ttl: 120, data: '192.0.2.9' }] });
    m.handleReceive(1200, { local: LOCAL, remote: PEER, data: answer });
    expect(drain(m).events).toEqual([{ type: 'resolved', name: NAME, address: '192.0.2.9' }]);
    expect(m.pollTimeout()).toBeUndefined();
  });
});

describe('MdnsResponder as a responder (RFC 6762 §5.4, §6)', () => {
  it('a query within a second of the last multicast is answered as soon as the second has passed', () => {
    const m = responder({ announcements: 1, announceDelayMs: 0 });
    const name = m.register(0, '192.0.2.1');
    expect(drain(m).sent).toHaveLength(1); // the announcement
    m.handleReceive(300, { local: MDNS_IPV4_GROUP, remote: PEER, data: query(name, 'A') });
    expect(drain(m).sent).toEqual([]);
    expect(m.stats.rateLimited).toBe(1);
    expect(m.pollTimeout()).toBe(1000);
    // More queries inside the same second add nothing: one answer a second, however many ask.
    for (let t = 400; t < 1000; t += 100) m.handleReceive(t, { local: MDNS_IPV4_GROUP, remote: PEER, data: query(name, 'A') });
    const out = runUntil(m, 0, 10_000);
    expect(out.map((x) => [x.at, x.d.remote])).toEqual([[1000, MDNS_IPV4_GROUP]]);
    expect(decode(out[0]!.d).answers).toEqual([{ type: 'A', name, ttl: 120, class: 'IN', flush: true, data: '192.0.2.1' }]);
    expect(m.pollTimeout()).toBeUndefined();
    // A query a full second later is answered at once.
    m.handleReceive(2000, { local: MDNS_IPV4_GROUP, remote: PEER, data: query(name, 'A') });
    expect(drain(m).sent).toHaveLength(1);
  });

  it('the second announcement answers a query held back by the first: one multicast, not two', () => {
    const m = responder({ announceDelayMs: 0 });
    const name = m.register(0, '192.0.2.1');
    drain(m);
    m.handleReceive(20, { local: MDNS_IPV4_GROUP, remote: PEER, data: query(name, 'A') });
    expect(drain(m).sent).toEqual([]);
    const out = runUntil(m, 0, 10_000);
    expect(out.map((x) => x.at)).toEqual([1000]);
    // Held back again after the second announcement, answered at 2000.
    m.handleReceive(1500, { local: MDNS_IPV4_GROUP, remote: PEER, data: query(name, 'A') });
    expect(drain(m).sent).toEqual([]);
    expect(runUntil(m, 1500, 10_000).map((x) => x.at)).toEqual([2000]);
  });

  it('a QU question is answered at once by unicast to the querier, unless the record was not multicast for a quarter TTL', () => {
    const m = responder({ announceDelayMs: 0 });
    const name = m.register(0, '192.0.2.1');
    drain(m);
    const querier = { address: '192.0.2.7', port: 5353 };
    // 200 ms after the announcement: the rate limit does not apply to a unicast answer.
    m.handleReceive(200, { local: MDNS_IPV4_GROUP, remote: querier, data: query(name, 'A', true) });
    const { sent } = drain(m);
    expect(sent.map((d) => d.remote)).toEqual([querier]);
    expect(decode(sent[0]!)).toMatchObject({ type: 'response', id: 0, answers: [{ type: 'A', name, data: '192.0.2.1', flush: true }] });
    // A QU question from another port still goes back to that port.
    const other = { address: '192.0.2.8', port: 5353 };
    m.handleReceive(300, { local: MDNS_IPV4_GROUP, remote: other, data: query(name, 'A', true) });
    expect(drain(m).sent.map((d) => d.remote)).toEqual([other]);
    runUntil(m, 300, 2000); // the second announcement
    // 40 s without a multicast (more than 120 s / 4): RFC 6762 §5.4 asks for a multicast answer instead.
    m.handleReceive(41_000, { local: MDNS_IPV4_GROUP, remote: querier, data: query(name, 'A', true) });
    expect(drain(m).sent.map((d) => d.remote)).toEqual([MDNS_IPV4_GROUP]);
  });
});

describe('AgentMachine: the mDNS resolve deadline', () => {
  it('asks only for the families of its host sockets, then drops the candidate at the deadline', () => {
    const group = MDNS_IPV4_GROUP;
    const mdnsLocal = { address: '192.0.2.1', port: 5353 };
    const responderA = new MdnsResponder({ random: new SeededRandom('ra'), local: mdnsLocal, group, resolveTimeoutMs: 5000 });
    const a = new AgentMachine({
      random: new SeededRandom('a'),
      bases: [{ address: { address: '192.0.2.1', port: 5000 }, component: 1 }],
      mdns: { responder: responderA, local: mdnsLocal },
    });
    a.gather(0);
    a.setRemoteParameters(0, { ufrag: 'peer', pwd: 'peerpasswordpeerpassword' });
    const candidate = { foundation: '1', component: 1, transport: 'udp', priority: 2130706431, address: NAME, port: 6000, type: 'host' } as const;
    a.addRemoteCandidate(0, 0, candidate);
    const queries: { at: number; q: string[] }[] = [];
    const events: AgentMachineEvent[] = [];
    let now = 0;
    const collect = () => {
      for (let d = a.pollTransmit(); d; d = a.pollTransmit()) {
        if (d.remote.address !== group.address) continue;
        const p = dnsPacket.decode(Buffer.from(d.data));
        if (p.type === 'query') queries.push({ at: now, q: (p.questions ?? []).map((x) => x.type) });
      }
      for (let e = a.pollEvent(); e; e = a.pollEvent()) events.push(e);
    };
    collect();
    for (let guard = 0; guard < 10_000; guard++) {
      const t = a.pollTimeout();
      if (t === undefined || t > 20_000) break;
      now = Math.max(now, t);
      a.handleTimeout(now);
      collect();
      if (events.some((e) => e.type === 'remote-candidate-dropped')) break;
    }
    // IPv4 host sockets only: A queries, never AAAA.
    expect(queries).toEqual([
      { at: 0, q: ['A'] },
      { at: 1000, q: ['A'] },
      { at: 3000, q: ['A'] },
    ]);
    expect(events.filter((e) => e.type === 'remote-candidate-dropped')).toEqual([
      { type: 'remote-candidate-dropped', stream: 0, candidate, reason: 'mdns-timeout' },
    ]);
    expect(now).toBe(5000);
  });
});
