import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttributeType, StunMethod } from '../../src/stun/constants.js';
import { encodeStunMessage, type StunClass } from '../../src/stun/message.js';
import { UdpMuxError } from '../../src/stun/mux-router.js';
import { frameRfc4571 } from '../../src/stun/rfc4571.js';
import { TcpMuxRouter } from '../../src/stun/tcp-mux-router.js';
import type { TransportAddress } from '../../src/types.js';

const MUX: TransportAddress = { address: '10.0.0.1', port: 3478 };
const peer = (n: number): TransportAddress => ({ address: `192.0.2.${n}`, port: 5000 + n });
const text = (s: string) => new TextEncoder().encode(s);
function stun(cls: StunClass, opts: { username?: string; method?: number } = {}): Uint8Array {
  const attributes = opts.username !== undefined ? [{ type: AttributeType.USERNAME, value: text(opts.username) }] : [];
  return encodeStunMessage({ method: opts.method ?? StunMethod.Binding, cls, transactionId: new Uint8Array(12).fill(7), attributes }, { integrityKey: text('p'.repeat(22)), fingerprint: true });
}
const check = (username: string) => frameRfc4571(stun('request', { username }));
const RTP = new Uint8Array([0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);

describe('TcpMuxRouter', () => {
  it('routes a connection by the ufrag of its first framed Binding request, handing over every byte so far', () => {
    const r = new TcpMuxRouter();
    const a = r.register('aaaa');
    const b = r.register('bbbb');
    expect(r.accept(0, 'c1', MUX, peer(1))).toBe(true);
    expect(r.accept(0, 'c2', MUX, peer(2))).toBe(true);
    const first = check('bbbb:remote');
    const more = frameRfc4571(RTP);
    const both = new Uint8Array([...first, ...more]);
    // Split at every boundary: one byte, then the rest in two chunks.
    expect(r.receive(1, 'c1', both.subarray(0, 1))).toEqual({ type: 'wait' });
    expect(r.receive(1, 'c1', both.subarray(1, 30))).toEqual({ type: 'wait' });
    const d = r.receive(2, 'c1', both.subarray(30));
    expect(d).toMatchObject({ type: 'route', agent: b });
    expect([...(d as { bytes: Uint8Array }).bytes]).toEqual([...both]);
    // The whole first frame in one chunk: no copy, routed at once.
    const whole = check('aaaa:x');
    expect(r.receive(2, 'c2', whole)).toEqual({ type: 'route', agent: a, bytes: whole });
    expect(r.stats).toMatchObject({ agents: 2, pending: 0, accepted: 2, routed: 2 });
    // A decided connection is no longer the router's.
    expect(r.receive(3, 'c2', RTP)).toMatchObject({ type: 'drop' });
    expect(r.bufferedBytes).toBe(0);
  });

  it('closes hostile first frames at once, counted by reason, and never routes them', () => {
    const r = new TcpMuxRouter();
    r.register('aaaa');
    const cases: [Uint8Array, string][] = [
      [frameRfc4571(RTP), 'not-a-check'],
      [frameRfc4571(new Uint8Array(0)), 'not-a-check'],
      [frameRfc4571(stun('indication', { username: 'aaaa:x' })), 'not-a-check'],
      [frameRfc4571(stun('success', { username: 'aaaa:x' })), 'not-a-check'],
      [frameRfc4571(stun('request', { username: 'aaaa:x', method: StunMethod.Allocate })), 'not-a-check'],
      [frameRfc4571(new Uint8Array([0, 1, 0, 4, 1, 2, 3, 4, ...new Array(16).fill(0)])), 'not-a-check'],
      [check('aaaa'), 'no-username'],
      [frameRfc4571(stun('request')), 'no-username'],
      [check('zzzz:aaaa'), 'unknown-ufrag'],
      [new Uint8Array([0x08, 0x01]), 'oversized-frame'],
      [new Uint8Array([0xff, 0xff, 0]), 'oversized-frame'],
    ];
    cases.forEach(([bytes, reason], i) => {
      expect(r.accept(0, `k${i}`, MUX, peer(i))).toBe(true);
      expect(r.receive(0, `k${i}`, bytes)).toEqual({ type: 'drop', reason });
    });
    expect(r.stats.dropped).toEqual({ 'pending-limit': 0, 'oversized-frame': 2, 'not-a-check': 6, 'no-username': 2, 'unknown-ufrag': 1, timeout: 0, 'closed-early': 0 });
    expect(r.stats.routed).toBe(0);
    expect(r.stats.pending).toBe(0);
  });

  it('caps pending connections, times out silent ones in order, counts early closes', () => {
    const r = new TcpMuxRouter({ maxPending: 3, firstFrameTimeoutMs: 1000 });
    r.register('aaaa');
    expect(r.accept(0, 'a', MUX, peer(1))).toBe(true);
    expect(r.accept(100, 'b', MUX, peer(2))).toBe(true);
    expect(r.accept(200, 'c', MUX, peer(3))).toBe(true);
    expect(r.accept(200, 'd', MUX, peer(4))).toBe(false);
    expect(r.stats.dropped['pending-limit']).toBe(1);
    expect(r.pollTimeout()).toBe(1000);
    r.receive(300, 'b', new Uint8Array([0])); // half a length prefix: still waiting
    expect(r.handleTimeout(999)).toEqual([]);
    expect(r.handleTimeout(1100)).toEqual(['a', 'b']);
    expect(r.pollTimeout()).toBe(1200);
    r.closed('c');
    r.closed('c'); // once
    expect(r.pollTimeout()).toBeUndefined();
    // A frame completing after its deadline (before the timer ran) is a time-out too.
    expect(r.accept(2000, 'e', MUX, peer(5))).toBe(true);
    expect(r.receive(3000, 'e', check('aaaa:x'))).toEqual({ type: 'drop', reason: 'timeout' });
    expect(r.stats.dropped).toMatchObject({ timeout: 3, 'closed-early': 1, 'pending-limit': 1 });
    // Room again after the time-outs.
    expect(r.accept(3000, 'f', MUX, peer(6))).toBe(true);
  });

  it('restarts: a new ufrag routes beside the old one, the old one stops once removed, a gone agent gets nothing', () => {
    const r = new TcpMuxRouter();
    const a = r.register('old1');
    r.addUfrag(a, 'new1');
    const route = (key: string, u: string) => {
      r.accept(0, key, MUX, peer(1));
      return r.receive(0, key, check(`${u}:x`));
    };
    expect(route('1', 'new1')).toMatchObject({ agent: a });
    expect(route('2', 'old1')).toMatchObject({ agent: a });
    r.removeUfrag(a, 'old1');
    expect(route('3', 'old1')).toMatchObject({ reason: 'unknown-ufrag' });
    expect(r.ufragsOf(a)).toEqual(['new1']);
    r.unregister(a);
    expect(route('4', 'new1')).toMatchObject({ reason: 'unknown-ufrag' });
    const b = r.register('new1'); // the ufrag is free again, for a new id
    expect(b).not.toBe(a);
    expect(() => r.register('new1')).toThrow(UdpMuxError);
    expect(() => new TcpMuxRouter({ maxPending: 0 })).toThrow(UdpMuxError);
    expect(() => new TcpMuxRouter({ maxFirstFrameBytes: 70000 })).toThrow(UdpMuxError);
  });

  it('property: any byte stream, in any chunks, holds at most 2 + maxFirstFrameBytes and routes only a check with a known ufrag', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.integer({ min: 1, max: 50 }), { maxLength: 40 }), fc.boolean(), (junk, cuts, prefixCheck) => {
        const r = new TcpMuxRouter({ maxFirstFrameBytes: 256 });
        const a = r.register('aaaa');
        const stream = prefixCheck ? new Uint8Array([...check('aaaa:x'), ...junk]) : junk;
        r.accept(0, 'k', MUX, peer(1));
        let at = 0;
        let decision: ReturnType<TcpMuxRouter['receive']> = { type: 'wait' };
        for (const n of [...cuts, stream.length]) {
          if (at >= stream.length || decision.type !== 'wait') break;
          decision = r.receive(0, 'k', stream.subarray(at, at + n));
          at += n;
          expect(r.bufferedBytes).toBeLessThanOrEqual(2 + 256);
        }
        if (decision.type === 'route') {
          expect(decision.agent).toBe(a);
          expect([...decision.bytes]).toEqual([...stream.subarray(0, Math.min(at, stream.length))]);
        }
        if (prefixCheck) expect(decision.type).toBe('route');
      }),
      { numRuns: 300 },
    );
  });
});
