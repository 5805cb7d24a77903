/**
 * RFC 8445 §14.1, §14.2: an Allocate starts a gathering transaction, paced process-wide. Its first send is marked
 * `paced` so the edge stamps the pacer when it leaves; retransmissions and the client's other requests are not.
 */
import { describe, expect, it } from 'vitest';
import { Attr, attr, decodeStunMessage, StunMethod } from '../../src/stun/index.js';
import { Allocations } from '../../src/turnclient/allocations.js';
import { TurnAttr } from '../../src/turnclient/index.js';
import type { Datagram } from '../../src/types.js';
import { challenge, KEY, LOCAL, makeClient, MAPPED, RELAYED, reply, SERVER, seededRandom, transmits } from './scripted.js';

const txid = (d: Datagram) => Buffer.from(d.data.subarray(8, 20)).toString('hex');

describe('TurnClient: paced first sends', () => {
  it('marks the first send of each Allocate, not its retransmissions', () => {
    const c = makeClient();
    c.allocate(0);
    const first = transmits(c);
    expect(first).toHaveLength(1);
    expect(first[0]!.paced).toBe(true);
    // Nobody answers: the retransmissions re-send the request unmarked.
    const later: Datagram[] = [];
    for (let t = c.pollTimeout(); t !== undefined && t < 2_000; t = c.pollTimeout()) {
      c.handleTimeout(t);
      later.push(...transmits(c));
    }
    expect(later.length).toBeGreaterThan(1);
    for (const d of later) {
      expect(txid(d)).toBe(txid(first[0]!));
      expect(d.paced).toBeUndefined();
    }
  });

  it('the authenticated Allocate after a 401 is a new transaction: its first send is marked too', () => {
    const c = makeClient();
    c.allocate(0);
    const [unauth] = transmits(c);
    reply(c, 1, decodeStunMessage(unauth!.data), 'error', challenge());
    const [auth] = transmits(c);
    expect(decodeStunMessage(auth!.data).method).toBe(StunMethod.Allocate);
    expect(txid(auth!)).not.toBe(txid(unauth!));
    expect(auth!.paced).toBe(true);
    // Once allocated, the client's other requests (permissions, channels, refreshes) are not gathering: unmarked.
    reply(c, 2, decodeStunMessage(auth!.data), 'success', (id) => [
      attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, id),
      attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, id),
      attr(TurnAttr.LIFETIME, 600, id),
    ], { key: KEY });
    expect(c.state).toBe('allocated');
    c.createPermission(3, '203.0.113.5');
    const [perm] = transmits(c);
    expect(decodeStunMessage(perm!.data).method).toBe(StunMethod.CreatePermission);
    expect(perm!.paced).toBeUndefined();
  });
});

describe('Allocations: the mark reaches the agent', () => {
  it('hands the Allocate first send on with its paced mark', () => {
    const a = new Allocations({ random: seededRandom() });
    a.allocate(0, 0, { id: 'r1', base: LOCAL, component: 1, server: { server: SERVER, transport: 'udp', username: 'user', credential: 'pass' } });
    const d = a.pollTransmit();
    expect(decodeStunMessage(d!.data).method).toBe(StunMethod.Allocate);
    expect(d!.paced).toBe(true);
  });
});
