/**
 * Components without ICE in virtual time: NoIcePaths alone (latching, keepalives, the `connected` report), then
 * through AgentMachine, where `connected` now comes from the sans-IO side rather than the Node edge.
 */
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent } from '../src/agent-machine.js';
import { decodeStunMessage, encodeStunMessage, StunMethod } from '../src/stun/index.js';
import { SeededRandom } from '../src/testing/random.js';
import type { Datagram, TransportAddress } from '../src/types.js';
import { NO_ICE_KEEPALIVE_MS, NoIcePaths, type NoIceEvent } from '../src/without-ice.js';

const RTP: TransportAddress = { address: '127.0.0.1', port: 40000 };
const RTCP: TransportAddress = { address: '127.0.0.1', port: 40001 };
const SIGNALLED: TransportAddress = { address: '127.0.0.2', port: 5004 };
const RELAY: TransportAddress = { address: '127.0.0.3', port: 6000 };
const rtp = (n: number) => new Uint8Array([0x80, 0, 0, n]);

function drain<E>(m: { pollTransmit(): Datagram | undefined; pollEvent(): E | undefined }): { transmits: Datagram[]; events: E[] } {
  const transmits: Datagram[] = [];
  const events: E[] = [];
  for (let d = m.pollTransmit(); d; d = m.pollTransmit()) transmits.push(d);
  for (let e = m.pollEvent(); e; e = m.pollEvent()) events.push(e);
  return { transmits, events };
}

describe('NoIcePaths (virtual time)', () => {
  it('reports connected once, when the last component of every stream runs without ICE', () => {
    const p = new NoIcePaths({ random: new SeededRandom('n'), streams: [2] });
    p.add(0, 0, 1, RTP, SIGNALLED);
    expect(drain<NoIceEvent>(p).events).toEqual([]);
    p.add(0, 0, 2, RTCP, { ...SIGNALLED, port: 5005 });
    expect(drain<NoIceEvent>(p).events).toEqual([{ type: 'state', state: 'connected' }]);
    p.add(1, 0, 1, RTP, RELAY); // re-targeting a component is no new report
    expect(drain<NoIceEvent>(p).events).toEqual([]);
  });

  it('sends to the signalled address, then latches on to the first source that answers', () => {
    const p = new NoIcePaths({ random: new SeededRandom('n'), streams: [1] });
    p.add(0, 0, 1, RTP, SIGNALLED);
    expect(p.send(1, 0, 1, rtp(1))).toBe(true);
    expect(p.send(1, 0, 2, rtp(1))).toBe(false); // not a component without ICE
    expect(drain<NoIceEvent>(p).transmits).toEqual([{ local: RTP, remote: SIGNALLED, data: rtp(1) }]);
    expect(p.handleReceive(2, { local: RTP, remote: RELAY, data: rtp(2) })).toBe(true);
    const { events } = drain<NoIceEvent>(p);
    expect(events).toEqual([
      { type: 'latched', stream: 0, component: 1, remote: RELAY },
      { type: 'data', stream: 0, component: 1, data: rtp(2), from: RELAY, local: RTP },
    ]);
    expect(p.destination(0, 1)).toEqual(RELAY);
    // Latching happens once: a later source does not move the destination.
    p.handleReceive(3, { local: RTP, remote: SIGNALLED, data: rtp(3) });
    expect(drain<NoIceEvent>(p).events.map((e) => e.type)).toEqual(['data']);
    expect(p.destination(0, 1)).toEqual(RELAY);
  });

  it('leaves STUN and other bases to the owner', () => {
    const p = new NoIcePaths({ random: new SeededRandom('n'), streams: [1] });
    p.add(0, 0, 1, RTP, SIGNALLED);
    const stun = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes: [] });
    expect(p.handleReceive(1, { local: RTP, remote: SIGNALLED, data: stun })).toBe(false);
    expect(p.handleReceive(1, { local: RTCP, remote: SIGNALLED, data: rtp(1) })).toBe(false);
  });

  it('a Binding indication after 15 s without data, none while data flows, none after close', () => {
    const p = new NoIcePaths({ random: new SeededRandom('n'), streams: [1] });
    p.add(0, 0, 1, RTP, SIGNALLED);
    expect(p.pollTimeout()).toBe(NO_ICE_KEEPALIVE_MS);
    p.send(10_000, 0, 1, rtp(1)); // data holds the binding open as well
    drain<NoIceEvent>(p);
    p.handleTimeout(NO_ICE_KEEPALIVE_MS);
    expect(drain<NoIceEvent>(p).transmits).toEqual([]);
    expect(p.pollTimeout()).toBe(10_000 + NO_ICE_KEEPALIVE_MS);
    p.handleTimeout(10_000 + NO_ICE_KEEPALIVE_MS);
    const [keepalive] = drain<NoIceEvent>(p).transmits;
    expect(keepalive).toMatchObject({ local: RTP, remote: SIGNALLED });
    const m = decodeStunMessage(keepalive!.data);
    expect([m.method, m.cls]).toEqual([StunMethod.Binding, 'indication']);
    p.close();
    expect(p.pollTimeout()).toBeUndefined();
    expect(p.send(40_000, 0, 1, rtp(1))).toBe(false);
    p.handleTimeout(100_000);
    expect(drain<NoIceEvent>(p).transmits).toEqual([]);
  });
});

describe('AgentMachine without ICE (virtual time)', () => {
  it('emits connected itself once every component runs without ICE, and latches', () => {
    const m = new AgentMachine({
      random: new SeededRandom('a'),
      streams: [2],
      bases: [
        { address: RTP, component: 1 },
        { address: RTCP, component: 2 },
      ],
    });
    m.gather(0);
    drain<AgentMachineEvent>(m);
    m.useWithoutIce(1, 0, 1, SIGNALLED);
    expect(drain<AgentMachineEvent>(m).events.filter((e) => e.type === 'state')).toEqual([]);
    m.useWithoutIce(1, 0, 2, { ...SIGNALLED, port: 5005 });
    expect(drain<AgentMachineEvent>(m).events).toContainEqual({ type: 'state', state: 'connected' });
    expect(m.send(2, 0, 1, rtp(1))).toBe(true);
    expect(drain<AgentMachineEvent>(m).transmits).toEqual([{ local: RTP, remote: SIGNALLED, data: rtp(1) }]);
    expect(m.handleReceive(3, { local: RTP, remote: RELAY, data: rtp(2) })).toBe(true);
    expect(drain<AgentMachineEvent>(m).events.map((e) => e.type)).toEqual(['latched', 'data']);
    expect(m.withoutIceDestination(0, 1)).toEqual(RELAY);
  });
});
