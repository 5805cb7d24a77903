import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttributeType, StunMethod } from '../../src/stun/constants.js';
import { encodeStunMessage, type StunClass } from '../../src/stun/message.js';
import { UdpMuxError, UdpMuxRouter, usernameUfrag } from '../../src/stun/mux-router.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

const MUX: TransportAddress = { address: '10.0.0.1', port: 3478 };
const text = (s: string) => new TextEncoder().encode(s);
let txSeq = 0;
function txid(): Uint8Array {
  const t = new Uint8Array(12);
  new DataView(t.buffer).setUint32(8, ++txSeq);
  return t;
}
function stun(cls: StunClass, opts: { username?: string; method?: number; transactionId?: Uint8Array } = {}): Uint8Array {
  const attributes = opts.username !== undefined ? [{ type: AttributeType.USERNAME, value: text(opts.username) }] : [];
  return encodeStunMessage({ method: opts.method ?? StunMethod.Binding, cls, transactionId: opts.transactionId ?? txid(), attributes }, { integrityKey: text('p'.repeat(22)), fingerprint: true });
}
const peer = (n: number): TransportAddress => ({ address: `192.0.2.${n}`, port: 5000 + n });
const inbound = (remote: TransportAddress, data: Uint8Array): Datagram => ({ local: MUX, remote, data });
const outbound = (remote: TransportAddress, data: Uint8Array): Datagram => ({ local: MUX, remote, data });
const RTP = new Uint8Array([0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);

describe('UdpMuxRouter', () => {
  it('routes a Binding request by the ufrag before the colon, and drops unknown ones (counted)', () => {
    const r = new UdpMuxRouter();
    const a = r.register('aaaa');
    const b = r.register('bbbb');
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'aaaa:xyz1' })))).toBe(a);
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'bbbb:aaaa' })))).toBe(b);
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'cccc:aaaa' })))).toBe('unknown-ufrag');
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'aaaa' })))).toBe('no-username');
    expect(r.route(0, inbound(peer(1), stun('request', { username: ':aaaa' })))).toBe('no-username');
    expect(r.route(0, inbound(peer(1), stun('request')))).toBe('no-username');
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'aaaa:x', method: StunMethod.Allocate })))).toBe('unsupported-request');
    expect(r.route(0, inbound(peer(1), new Uint8Array([0, 1, 0, 0])))).toBe('malformed-stun');
    const s = r.stats;
    expect(s.routed).toBe(2);
    expect(s.dropped).toEqual({ 'malformed-stun': 1, 'unsupported-request': 1, 'no-username': 3, 'unknown-ufrag': 1, 'unknown-transaction': 0, 'no-route': 0 });
  });

  it('learns no route from a request, only from the agent answering it (after its integrity check)', () => {
    const r = new UdpMuxRouter();
    const a = r.register('aaaa');
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'aaaa:x' })))).toBe(a);
    // A spoofed USERNAME alone: data from that source still has no route.
    expect(r.route(0, inbound(peer(1), RTP))).toBe('no-route');
    expect(r.routeOwner(MUX, peer(1))).toBeUndefined();
    // The agent answered with an error (integrity failed): still nothing learned.
    r.noteTransmit(0, a, outbound(peer(1), stun('error')));
    expect(r.route(0, inbound(peer(1), RTP))).toBe('no-route');
    // The agent answered with success: the 5-tuple is the agent's.
    r.noteTransmit(0, a, outbound(peer(1), stun('success')));
    expect(r.route(0, inbound(peer(1), RTP))).toBe(a);
    expect(r.route(0, inbound(peer(1), new Uint8Array([0x40, 0, 0, 0])))).toBe(a); // ChannelData too
  });

  it('routes responses by the transaction the agent sent, even when two agents talk to one server', () => {
    const r = new UdpMuxRouter();
    const a = r.register('aaaa');
    const b = r.register('bbbb');
    const server = peer(9);
    const ta = txid();
    const tb = txid();
    r.noteTransmit(0, a, outbound(server, stun('request', { transactionId: ta })));
    r.noteTransmit(0, b, outbound(server, stun('request', { transactionId: tb })));
    expect(r.route(1, inbound(server, stun('success', { transactionId: tb })))).toBe(b);
    expect(r.route(1, inbound(server, stun('success', { transactionId: ta })))).toBe(a);
    // Answered: a second answer to the same transaction falls back to the 5-tuple (the first sender's weak route).
    expect(r.route(1, inbound(server, stun('success', { transactionId: tb })))).toBe(a);
    expect(r.stats.conflicts).toBe(1);
    // An unknown transaction from an unknown source.
    expect(r.route(1, inbound(peer(8), stun('success')))).toBe('unknown-transaction');
  });

  it('forgets transactions after their time to live, and keeps at most maxTransactionsPerAgent', () => {
    const r = new UdpMuxRouter({ transactionTtlMs: 1000, maxTransactionsPerAgent: 3 });
    const a = r.register('aaaa');
    const ids = [txid(), txid(), txid(), txid()];
    for (const [i, t] of ids.entries()) r.noteTransmit(i, a, outbound(peer(i + 1), stun('request', { transactionId: t })));
    expect(r.stats.transactions).toBe(3);
    expect(r.stats.transactionEvictions).toBe(1);
    expect(r.route(10, inbound(peer(20), stun('success', { transactionId: ids[0]! })))).toBe('unknown-transaction');
    expect(r.route(10, inbound(peer(20), stun('success', { transactionId: ids[1]! })))).toBe(a);
    expect(r.route(2000, inbound(peer(20), stun('success', { transactionId: ids[2]! })))).toBe('unknown-transaction');
    expect(r.stats.transactions).toBe(0);
  });

  it('a strong route beats a weak one; a strong one passes only after the owner is silent', () => {
    const r = new UdpMuxRouter({ takeoverAfterMs: 10_000 });
    const a = r.register('aaaa');
    const b = r.register('bbbb');
    const x = peer(1);
    // Hostile signalling made A check x first: a weak claim.
    r.noteTransmit(0, a, outbound(x, stun('request')));
    expect(r.routeOwner(MUX, x)).toBe(a);
    // B answers an authenticated request from x: B's now.
    r.noteTransmit(1, b, outbound(x, stun('success')));
    expect(r.routeOwner(MUX, x)).toBe(b);
    // A spoofing peer with A's credentials, from x, while B's peer is alive there: B keeps it.
    r.noteTransmit(5_000, a, outbound(x, stun('success')));
    expect(r.routeOwner(MUX, x)).toBe(b);
    r.noteTransmit(9_000, b, outbound(x, stun('success'))); // B's consent answer
    r.noteTransmit(18_000, a, outbound(x, stun('success')));
    expect(r.routeOwner(MUX, x)).toBe(b);
    // B has not answered there for 10 s: the peer at x now talks to A (address reuse).
    r.noteTransmit(19_000, a, outbound(x, stun('success')));
    expect(r.routeOwner(MUX, x)).toBe(a);
    expect(r.stats).toMatchObject({ conflicts: 2, takeovers: 1 });
  });

  it('unregister removes every route, ufrag and transaction at once; ids are never reused', () => {
    const r = new UdpMuxRouter();
    const a = r.register('aaaa');
    const t = txid();
    r.noteTransmit(0, a, outbound(peer(1), stun('success')));
    r.noteTransmit(0, a, outbound(peer(2), stun('request', { transactionId: t })));
    r.unregister(a);
    expect(r.stats).toMatchObject({ agents: 0, ufrags: 0, routes: 0, transactions: 0 });
    expect(r.route(0, inbound(peer(1), RTP))).toBe('no-route');
    expect(r.route(0, inbound(peer(2), stun('success', { transactionId: t })))).toBe('unknown-transaction');
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'aaaa:x' })))).toBe('unknown-ufrag');
    const again = r.register('aaaa');
    expect(again).not.toBe(a);
    r.noteTransmit(0, a, outbound(peer(1), stun('success'))); // the closed agent's late transmit: ignored
    expect(r.routeOwner(MUX, peer(1))).toBeUndefined();
  });

  it('restart: a second ufrag routes beside the first until it is removed', () => {
    const r = new UdpMuxRouter({ maxUfragsPerAgent: 2 });
    const a = r.register('old1');
    r.addUfrag(a, 'new1');
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'old1:x' })))).toBe(a);
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'new1:x' })))).toBe(a);
    expect(() => r.addUfrag(a, 'new2')).toThrow(UdpMuxError);
    r.removeUfrag(a, 'old1');
    expect(r.ufragsOf(a)).toEqual(['new1']);
    expect(r.route(0, inbound(peer(1), stun('request', { username: 'old1:x' })))).toBe('unknown-ufrag');
  });

  it('limits: agents, ufrags taken, routes per agent (least recently confirmed evicted)', () => {
    const r = new UdpMuxRouter({ maxAgents: 2, maxRoutesPerAgent: 2 });
    const a = r.register('aaaa');
    expect(() => r.register('aaaa')).toThrow(expect.objectContaining({ code: 'ERR_UDP_MUX', reason: 'ufrag-taken' }));
    r.register('bbbb');
    expect(() => r.register('cccc')).toThrow(expect.objectContaining({ reason: 'agent-limit' }));
    r.noteTransmit(0, a, outbound(peer(1), stun('success')));
    r.noteTransmit(1, a, outbound(peer(2), stun('success')));
    r.noteTransmit(2, a, outbound(peer(1), stun('success'))); // peer 1 confirmed again: peer 2 is now the oldest
    r.noteTransmit(3, a, outbound(peer(3), stun('success')));
    expect(r.routeOwner(MUX, peer(2))).toBeUndefined();
    expect(r.routeOwner(MUX, peer(1))).toBe(a);
    expect(r.routeOwner(MUX, peer(3))).toBe(a);
    expect(r.stats.routeEvictions).toBe(1);
    expect(() => new UdpMuxRouter({ maxAgents: 0 })).toThrow(UdpMuxError);
  });

  it('hostile input: random datagrams never throw, never reach an agent without a route or its ufrag, and make no state', () => {
    const r = new UdpMuxRouter();
    const a = r.register('aaaa');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 1, max: 250 }), (bytes, n) => {
        const out = r.route(0, inbound(peer(n), bytes));
        if (out === a) {
          // Only a well-formed Binding request naming our ufrag can get through.
          expect(usernameUfrag(bytes)).toBe('aaaa');
        }
      }),
      { numRuns: 3000 },
    );
    expect(r.stats).toMatchObject({ routes: 0, transactions: 0, agents: 1, ufrags: 1 });
  });

  it('usernameUfrag stops at truncated attributes', () => {
    const m = stun('request', { username: 'abcd:efgh' });
    expect(usernameUfrag(m)).toBe('abcd');
    const cut = m.slice();
    cut[22] = 0xff; // USERNAME's length runs past the message
    expect(usernameUfrag(cut)).toBeUndefined();
  });
});
