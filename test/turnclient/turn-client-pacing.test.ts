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

describe('TurnClient: an Allocate sent again waits for the process-wide pacer (RFC 8445 §14.2)', () => {
  it('two clients challenged at the same moment send their authenticated Allocates one interval apart', async () => {
    const { GlobalPacer } = await import('../../src/stun/pacing.js');
    const pacer = new GlobalPacer({ intervalMs: 5 });
    const clients = [makeClient({ pacer: pacer.register() }), makeClient({ pacer: pacer.register() })];
    // The first Allocates are paced by the gatherer that starts them; here they go out at 0 and 5.
    clients.forEach((c, i) => c.allocate(i * 5));
    const firsts = clients.map((c) => transmits(c)[0]!);
    // Both 401s arrive at t = 20: one retry leaves at once, the other waits for the next slot.
    clients.forEach((c, i) => reply(c, 20, decodeStunMessage(firsts[i]!.data), 'error', challenge()));
    const sentAt: number[] = [];
    for (let now = 20; now <= 40; now++) {
      for (const c of clients) {
        const t = c.pollTimeout();
        if (t !== undefined && t <= now) c.handleTimeout(now);
        for (const d of transmits(c)) if (d.paced) sentAt.push(now);
      }
    }
    expect(sentAt).toHaveLength(2);
    expect(sentAt[1]! - sentAt[0]!).toBeGreaterThanOrEqual(5);
    expect(sentAt[0]).toBe(20);
  });

  it('close() while the retry waits sends nothing and leaves the pacer line', async () => {
    const { GlobalPacer } = await import('../../src/stun/pacing.js');
    const pacer = new GlobalPacer({ intervalMs: 5 });
    const other = pacer.register();
    expect(other.request(20, 'ordinary')).toBe(true); // the slot at 20 is taken
    const c = makeClient({ pacer: pacer.register() });
    c.allocate(0);
    reply(c, 20, decodeStunMessage(transmits(c)[0]!.data), 'error', challenge());
    expect(transmits(c)).toHaveLength(0);
    expect(pacer.waiting).toBe(1);
    c.close(21);
    expect(pacer.waiting).toBe(0);
    c.handleTimeout(30);
    expect(transmits(c).filter((d) => decodeStunMessage(d.data).method === StunMethod.Allocate)).toHaveLength(0);
  });
});
