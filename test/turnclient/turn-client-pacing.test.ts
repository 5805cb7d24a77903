/**
 * RFC 8445 §14.1, §14.2: an Allocate starts a gathering transaction, paced process-wide. Its first send is marked
 * `paced` so the edge stamps the pacer when it leaves; retransmissions and the client's other requests are not.
 */
import { describe, expect, it } from 'vitest';
import { Attr, attr, decodeStunMessage, encodeStunMessage, StunMethod } from '../../src/stun/index.js';
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

describe('TurnClient: relayed check first sends keep their mark', () => {
  it('a Send indication or ChannelData carrying a paced check is marked; other data is not', () => {
    const c = makeClient({ autoBindChannel: false });
    c.allocate(0);
    reply(c, 1, decodeStunMessage(transmits(c)[0]!.data), 'error', challenge());
    reply(c, 2, decodeStunMessage(transmits(c)[0]!.data), 'success', (id) => [
      attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, id),
      attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, id),
      attr(TurnAttr.LIFETIME, 600, id),
    ], { key: KEY });
    const peer = { address: '203.0.113.5', port: 6000 };
    c.createPermission(3, peer.address);
    reply(c, 4, decodeStunMessage(transmits(c)[0]!.data), 'success', () => [], { key: KEY });
    c.send(5, peer, new Uint8Array([1, 2, 3]), true);
    c.send(5, peer, new Uint8Array([4, 5, 6]));
    expect(transmits(c).map((d) => d.paced === true)).toEqual([true, false]);
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

  it('wrap() passes the mark of a relayed check on to the TURN client', () => {
    const a = new Allocations({ random: seededRandom() });
    a.allocate(0, 0, { id: 'r1', base: LOCAL, component: 1, server: { server: SERVER, transport: 'udp', username: 'user', credential: 'pass' } });
    const fromServer = (req: Datagram, cls: 'success' | 'error', build: Parameters<typeof reply>[4], key?: Uint8Array): Datagram => {
      const m = decodeStunMessage(req.data);
      const data = encodeStunMessage({ method: m.method, cls, transactionId: m.transactionId, attributes: build(m.transactionId) }, key ? { integrityKey: key, integrity: 'sha1', fingerprint: true } : { fingerprint: true });
      return { local: LOCAL, remote: SERVER, data };
    };
    a.handleReceive(1, fromServer(a.pollTransmit()!, 'error', challenge()));
    a.handleReceive(2, fromServer(a.pollTransmit()!, 'success', (id) => [attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, id), attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, id), attr(TurnAttr.LIFETIME, 600, id)], KEY));
    for (let e = a.pollEvent(); e; e = a.pollEvent());
    const peer = { address: '203.0.113.5', port: 6000 };
    // The first datagram to the peer waits for a CreatePermission (its mark, if any, would be lost: see send()).
    expect(a.wrap(3, { local: RELAYED, remote: peer, data: new Uint8Array([0, 1]) })).toBe(true);
    a.handleReceive(4, fromServer(a.pollTransmit()!, 'success', () => [], KEY));
    while (a.pollTransmit() !== undefined);
    expect(a.wrap(5, { local: RELAYED, remote: peer, data: new Uint8Array([0, 2]), paced: true })).toBe(true);
    expect(a.pollTransmit()?.paced).toBe(true);
  });
});
