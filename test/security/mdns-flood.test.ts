import dnsPacket from 'dns-packet';
import { describe, expect, it } from 'vitest';
import { MDNS_IPV4_GROUP, MdnsResponder, uuidV4, type MdnsEvent } from '../../src/candidates/mdns.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { Datagram } from '../../src/types.js';

const LOCAL = { address: '127.0.0.1', port: 5353 };
const ATTACKER = { address: '127.0.0.9', port: 5353 };

function drain(m: MdnsResponder): { sent: Datagram[]; events: MdnsEvent[] } {
  const sent: Datagram[] = [];
  const events: MdnsEvent[] = [];
  for (let d = m.pollTransmit(); d; d = m.pollTransmit()) sent.push(d);
  for (let e = m.pollEvent(); e; e = m.pollEvent()) events.push(e);
  return { sent, events };
}

function query(name: string, qu = false): Uint8Array {
  return dnsPacket.encode({
    type: 'query',
    id: 0,
    questions: [{ type: 'A', name, class: (qu ? 'UNKNOWN_32769' : 'IN') as 'IN' }],
  });
}

describe('mDNS responder under a hostile LAN host', () => {
  it('multicasts a record at most once per second however many queries arrive (RFC 6762 §6)', () => {
    const r = new MdnsResponder({ random: new SeededRandom('rate'), local: LOCAL });
    const name = r.register(0, '10.0.0.5');
    r.handleTimeout(1000);
    drain(r); // both announcements
    // 1000 multicast queries within half a second, 0.5 ms apart.
    let multicasts = 0;
    for (let i = 0; i < 1000; i++) {
      r.handleReceive(2000 + i / 2, { local: LOCAL, remote: ATTACKER, data: query(name) });
      multicasts += drain(r).sent.filter((d) => d.remote.address === MDNS_IPV4_GROUP.address).length;
    }
    expect(multicasts).toBe(1);
    // A second later the record may go out again.
    r.handleReceive(3001, { local: LOCAL, remote: ATTACKER, data: query(name) });
    expect(drain(r).sent).toHaveLength(1);
  });

  it('does not answer by multicast right after an announcement', () => {
    const r = new MdnsResponder({ random: new SeededRandom('rate2'), local: LOCAL, announcements: 1, announceDelayMs: 0 });
    const name = r.register(0, '10.0.0.6');
    expect(drain(r).sent).toHaveLength(1);
    r.handleReceive(200, { local: LOCAL, remote: ATTACKER, data: query(name) });
    expect(drain(r).sent).toHaveLength(0);
    r.handleReceive(1000, { local: LOCAL, remote: ATTACKER, data: query(name) });
    expect(drain(r).sent).toHaveLength(1);
  });

  it('bounds concurrent resolutions: a signalling flood of .local names cannot flood the link with queries', () => {
    const r = new MdnsResponder({ random: new SeededRandom('pending'), local: LOCAL });
    const names = Array.from({ length: 5000 }, (_, i) => `${uuidV4(new SeededRandom(`n${i}`))}.local`);
    for (const n of names) r.resolve(0, n);
    const { sent, events } = drain(r);
    // One A and one AAAA query per name (each a single question), for at most 128 names.
    expect(sent.length).toBeLessThanOrEqual(2 * 128);
    // Every name over the bound is reported at once, not silently kept.
    const limited = events.filter((e) => e.type === 'unresolved' && e.reason === 'limit');
    expect(limited.length).toBe(names.length - sent.length / 2);
    // Over the whole resolve deadline (8 s: sends at 0, 1, 3 and 7 s), queries stay bounded too.
    let total = sent.length;
    for (let t = 0; t <= 9000; t += 100) {
      r.handleTimeout(t);
      total += drain(r).sent.length;
    }
    expect(total).toBeLessThanOrEqual(4 * 2 * 128);
    // Once the earlier ones finished, new resolutions are accepted again.
    r.resolve(10_000, `${uuidV4(new SeededRandom('late'))}.local`, [4]);
    expect(drain(r).sent).toHaveLength(1);
  });
});
