/**
 * Components without ICE in virtual time: NoIcePaths alone (keepalives on the wire, latching rules, state), then
 * through AgentMachine, then a scenario on the virtual network with a NAT in front of the peer.
 */
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent } from '../src/agent-machine.js';
import { decodeStunMessage, encodeStunMessage, StunMethod } from '../src/stun/index.js';
import { ScriptedEndpoint } from '../src/testing/endpoint.js';
import { SeededRandom } from '../src/testing/random.js';
import { VirtualNetwork } from '../src/testing/virtual-network.js';
import type { Datagram, TransportAddress } from '../src/types.js';
import {
  NO_ICE_KEEPALIVE_MS,
  NO_ICE_RELATCH_PACKETS,
  NO_ICE_RELATCH_SILENCE_MS,
  NO_ICE_SILENCE_TIMEOUT_MS,
  NoIcePaths,
  unusedPayloadType,
  type NoIceEvent,
  type NoIcePathsOptions,
} from '../src/without-ice.js';

const RTP: TransportAddress = { address: '127.0.0.1', port: 40000 };
const RTCP: TransportAddress = { address: '127.0.0.1', port: 40001 };
const SIGNALLED: TransportAddress = { address: '127.0.0.2', port: 5004 };
const SIGNALLED_RTCP: TransportAddress = { address: '127.0.0.2', port: 5005 };
const RELAY: TransportAddress = { address: '127.0.0.3', port: 6000 };
const OTHER: TransportAddress = { address: '127.0.0.4', port: 7000 };
const rtp = (n: number) => new Uint8Array([0x80, 0, 0, n]);

function drain<E>(m: { pollTransmit(): Datagram | undefined; pollEvent(): E | undefined }): { transmits: Datagram[]; events: E[] } {
  const transmits: Datagram[] = [];
  const events: E[] = [];
  for (let d = m.pollTransmit(); d; d = m.pollTransmit()) transmits.push(d);
  for (let e = m.pollEvent(); e; e = m.pollEvent()) events.push(e);
  return { transmits, events };
}

function paths(o: Partial<NoIcePathsOptions> = {}): NoIcePaths {
  return new NoIcePaths({ random: new SeededRandom('n'), streams: [1], ...o });
}

const states = (events: readonly { type: string; state?: unknown }[]) => events.flatMap((e) => (e.type === 'state' ? [String(e.state)] : []));
const from = (p: NoIcePaths, now: number, remote: TransportAddress, local = RTP, data = rtp(1)) => p.handleReceive(now, { local, remote, data });

describe('NoIcePaths state (virtual time)', () => {
  it('checking once every stream runs without ICE, connected on the peer’s data, never before', () => {
    const p = paths({ streams: [2] });
    p.add(0, 0, 2, RTCP, SIGNALLED_RTCP);
    expect(states(drain<NoIceEvent>(p).events)).toEqual([]); // component 1 decides
    p.add(0, 0, 1, RTP, SIGNALLED);
    expect(states(drain<NoIceEvent>(p).events)).toEqual(['checking']);
    p.send(10, 0, 1, rtp(1)); // our own sending proves nothing
    p.handleTimeout(20);
    expect(states(drain<NoIceEvent>(p).events)).toEqual([]);
    from(p, 30, SIGNALLED);
    expect(states(drain<NoIceEvent>(p).events)).toEqual(['connected']);
  });

  it('disconnected after silenceTimeoutMs without data, connected again when data returns; never failed', () => {
    const p = paths({ silenceTimeoutMs: 5000 });
    p.add(0, 0, 1, RTP, SIGNALLED);
    from(p, 100, SIGNALLED);
    expect(states(drain<NoIceEvent>(p).events)).toEqual(['checking', 'connected']);
    expect(p.pollTimeout()).toBe(5100); // the silence deadline comes before the 15 s keepalive
    p.handleTimeout(5099);
    expect(states(drain<NoIceEvent>(p).events)).toEqual([]);
    p.handleTimeout(5100);
    expect(states(drain<NoIceEvent>(p).events)).toEqual(['disconnected']);
    // Nothing to wait for once disconnected but the keepalive; an hour of silence stays disconnected.
    expect(p.pollTimeout()).toBe(NO_ICE_KEEPALIVE_MS);
    for (let t = NO_ICE_KEEPALIVE_MS; t < 3_600_000; t += NO_ICE_KEEPALIVE_MS) p.handleTimeout(t);
    expect(states(drain<NoIceEvent>(p).events)).toEqual([]);
    from(p, 3_600_000, SIGNALLED);
    expect(states(drain<NoIceEvent>(p).events)).toEqual(['connected']);
  });

  it('a peer that never sends is disconnected silenceTimeoutMs after setup; RTCP alone keeps a stream alive', () => {
    const p = paths({ streams: [2] });
    p.add(1000, 0, 1, RTP, SIGNALLED);
    p.add(1000, 0, 2, RTCP, SIGNALLED_RTCP);
    expect(p.pollTimeout()).toBe(1000 + NO_ICE_SILENCE_TIMEOUT_MS);
    p.handleTimeout(1000 + NO_ICE_SILENCE_TIMEOUT_MS);
    expect(states(drain<NoIceEvent>(p).events)).toEqual(['checking', 'disconnected']);
    // A held call: no RTP, RTCP every ~5 s (RFC 3550 §6.2).
    for (let t = 12_000; t <= 40_000; t += 5000) {
      from(p, t, SIGNALLED_RTCP, RTCP);
      p.handleTimeout(t);
    }
    expect(states(drain<NoIceEvent>(p).events)).toEqual(['connected']);
  });
});

describe('NoIcePaths latching (virtual time)', () => {
  it('latches on to the first source when the signalled address has said nothing, then drops others', () => {
    const p = paths();
    p.add(0, 0, 1, RTP, SIGNALLED);
    expect(p.send(1, 0, 1, rtp(1))).toBe(true);
    expect(p.send(1, 0, 2, rtp(1))).toBe(false); // not a component without ICE
    expect(drain<NoIceEvent>(p).transmits).toEqual([{ local: RTP, remote: SIGNALLED, data: rtp(1) }]);
    expect(from(p, 2, RELAY, RTP, rtp(2))).toBe(true);
    expect(drain<NoIceEvent>(p).events).toEqual([
      { type: 'latched', stream: 0, component: 1, remote: RELAY, previous: SIGNALLED, reason: 'first-packet' },
      { type: 'data', stream: 0, component: 1, data: rtp(2), from: RELAY, local: RTP },
      { type: 'state', state: 'connected' },
    ]);
    expect(p.destination(0, 1)).toEqual(RELAY);
    p.send(3, 0, 1, rtp(3));
    expect(drain<NoIceEvent>(p).transmits.map((d) => d.remote)).toEqual([RELAY]);
    // A third source is taken off the wire (true) but not delivered, and counted.
    expect(from(p, 4, OTHER)).toBe(true);
    expect(from(p, 5, OTHER)).toBe(true);
    expect(drain<NoIceEvent>(p).events).toEqual([]);
    expect(p.droppedOtherSource).toBe(2);
    expect(p.stats()).toMatchObject([{ signalled: SIGNALLED, remote: RELAY, packetsReceived: 1, packetsSent: 2, droppedOtherSource: 2 }]);
  });

  it('prefers the signalled address: once it spoke, nobody latches; when it speaks later, data goes back to it', () => {
    const p = paths();
    p.add(0, 0, 1, RTP, SIGNALLED);
    from(p, 1, SIGNALLED);
    from(p, 2, RELAY);
    expect(drain<NoIceEvent>(p).events.map((e) => e.type)).toEqual(['state', 'data', 'state']);
    expect(p.destination(0, 1)).toEqual(SIGNALLED);
    expect(p.droppedOtherSource).toBe(1);

    const q = paths();
    q.add(0, 0, 1, RTP, SIGNALLED);
    from(q, 1, RELAY);
    drain<NoIceEvent>(q);
    expect(from(q, 2, SIGNALLED)).toBe(true);
    expect(drain<NoIceEvent>(q).events.filter((e) => e.type !== 'data')).toEqual([
      { type: 'latched', stream: 0, component: 1, remote: SIGNALLED, previous: RELAY, reason: 'signalled' },
    ]);
    from(q, 3, RELAY); // the first latch was used up
    expect(q.destination(0, 1)).toEqual(SIGNALLED);
    expect(q.droppedOtherSource).toBe(1);
  });

  it('re-latches only after the current source was silent relatchSilenceMs and another sent relatchPackets in a row', () => {
    const p = paths();
    p.add(0, 0, 1, RTP, SIGNALLED);
    from(p, 0, RELAY);
    drain<NoIceEvent>(p);
    // Another source sends while the latched one is alive: dropped, however long its run.
    for (let t = 20; t < 1000; t += 20) {
      from(p, t, RELAY);
      from(p, t + 10, OTHER);
    }
    expect(p.destination(0, 1)).toEqual(RELAY);
    // The latched source stops at 980 ms. OTHER's run reaches relatchPackets long before the silence is over.
    let t = 1000;
    for (; t < 980 + NO_ICE_RELATCH_SILENCE_MS; t += 20) from(p, t, OTHER);
    expect(p.destination(0, 1)).toEqual(RELAY);
    expect(drain<NoIceEvent>(p).events.filter((e) => e.type === 'latched')).toEqual([]);
    from(p, t, OTHER);
    expect(p.destination(0, 1)).toEqual(OTHER);
    expect(drain<NoIceEvent>(p).events.filter((e) => e.type !== 'state')).toEqual([
      { type: 'latched', stream: 0, component: 1, remote: OTHER, previous: RELAY, reason: 'source-silent' },
      { type: 'data', stream: 0, component: 1, data: rtp(1), from: OTHER, local: RTP },
    ]);
  });

  it('a run must be unbroken: a datagram from a third source starts it over', () => {
    const p = paths({ relatchPackets: 3, relatchSilenceMs: 100 });
    p.add(0, 0, 1, RTP, SIGNALLED);
    from(p, 0, RELAY);
    from(p, 1000, OTHER);
    from(p, 1001, OTHER);
    from(p, 1002, { ...OTHER, port: 7001 });
    from(p, 1003, OTHER);
    from(p, 1004, OTHER);
    expect(p.destination(0, 1)).toEqual(RELAY);
    from(p, 1005, OTHER);
    expect(p.destination(0, 1)).toEqual(OTHER);
    expect(NO_ICE_RELATCH_PACKETS).toBe(5);
  });

  it('a new remote description starts latching over, keeping the counters', () => {
    const p = paths();
    p.add(0, 0, 1, RTP, SIGNALLED);
    from(p, 1, RELAY);
    from(p, 2, OTHER);
    p.add(3, 0, 1, RTP, { address: '127.0.0.9', port: 9000 });
    expect(p.destination(0, 1)).toEqual({ address: '127.0.0.9', port: 9000 });
    drain<NoIceEvent>(p);
    from(p, 4, OTHER);
    expect(drain<NoIceEvent>(p).events.filter((e) => e.type === 'latched')).toMatchObject([{ remote: OTHER, reason: 'first-packet' }]);
    expect(p.stats()[0]).toMatchObject({ packetsReceived: 2, droppedOtherSource: 1 });
  });

  it('leaves STUN and other bases to the owner', () => {
    const p = paths();
    p.add(0, 0, 1, RTP, SIGNALLED);
    const stun = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: new Uint8Array(12), attributes: [] });
    expect(p.handleReceive(1, { local: RTP, remote: OTHER, data: stun })).toBe(false);
    expect(p.handleReceive(1, { local: RTCP, remote: SIGNALLED, data: rtp(1) })).toBe(false);
    expect(p.destination(0, 1)).toEqual(SIGNALLED); // STUN latches nothing
  });
});

describe('NoIcePaths keepalives (virtual time)', () => {
  const header = (d: Uint8Array) => {
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    return { version: d[0]! >> 6, marker: d[1]! >> 7, pt: d[1]! & 0x7f, seq: v.getUint16(2), ts: v.getUint32(4), ssrc: v.getUint32(8) };
  };

  it('RTP with an unused payload type and no payload after the idle period; none while data flows', () => {
    const p = paths({ streams: [2], payloadType: 118, silenceTimeoutMs: 60_000 });
    p.add(0, 0, 1, RTP, SIGNALLED);
    p.add(0, 0, 2, RTCP, SIGNALLED_RTCP);
    drain<NoIceEvent>(p);
    expect(p.pollTimeout()).toBe(NO_ICE_KEEPALIVE_MS);
    p.send(10_000, 0, 1, rtp(1)); // data keeps the binding open as well
    drain<NoIceEvent>(p);
    p.handleTimeout(NO_ICE_KEEPALIVE_MS);
    const first = drain<NoIceEvent>(p).transmits;
    expect(first.map((d) => d.remote)).toEqual([SIGNALLED_RTCP]); // only the idle RTCP component
    expect(p.pollTimeout()).toBe(10_000 + NO_ICE_KEEPALIVE_MS);
    p.handleTimeout(25_000);
    p.handleTimeout(40_000);
    const sent = drain<NoIceEvent>(p).transmits.filter((d) => d.local === RTP);
    expect(sent).toHaveLength(2);
    const [a, b] = sent.map((d) => d.data);
    expect(a!.length).toBe(12);
    expect(sent[0]).toMatchObject({ local: RTP, remote: SIGNALLED });
    const ha = header(a!);
    const hb = header(b!);
    expect([ha.version, ha.marker, ha.pt]).toEqual([2, 0, 118]);
    expect(hb.ssrc).toBe(ha.ssrc);
    expect(hb.seq).toBe((ha.seq + 1) & 0xffff); // RFC 6263 §4.6: one more per packet
    expect((hb.ts - ha.ts) >>> 0).toBe(15_000 * 8); // 8 kHz
    expect(p.stats()[0]).toMatchObject({ keepalivesSent: 2, packetsSent: 1 });
  });

  it('RTCP on the RTCP component: an empty Receiver Report and an SDES CNAME, same SSRC as the RTP keepalive', () => {
    const p = paths({ streams: [2] });
    p.add(0, 0, 1, RTP, SIGNALLED);
    p.add(0, 0, 2, RTCP, SIGNALLED_RTCP);
    p.handleTimeout(NO_ICE_KEEPALIVE_MS);
    const out = drain<NoIceEvent>(p).transmits;
    const r = out.find((d) => d.local === RTCP)!;
    const k = out.find((d) => d.local === RTP)!;
    expect(r.remote).toEqual(SIGNALLED_RTCP);
    const d = r.data;
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    // RR: V=2, RC=0, PT=201, length 1 (two words), sender SSRC.
    expect([d[0], d[1], v.getUint16(2)]).toEqual([0x80, 201, 1]);
    expect(v.getUint32(4)).toBe(header(k.data).ssrc);
    // SDES: V=2, SC=1, PT=202; the chunk's SSRC, CNAME item (type 1), null-terminated to a word boundary.
    expect([d[8], d[9]]).toEqual([0x81, 202]);
    expect((v.getUint16(10) + 1) * 4).toBe(d.length - 8);
    expect(v.getUint32(12)).toBe(v.getUint32(4));
    expect(d[16]).toBe(1);
    const len = d[17]!;
    expect(len).toBeGreaterThan(0);
    expect(d[18 + len]).toBe(0);
    expect(d.length % 4).toBe(0);
  });

  it("'stun', 'rtcp' and 'none' on the RTP component, and per-component overrides", () => {
    const kinds = (o: Partial<NoIcePathsOptions>, override?: Parameters<NoIcePaths['add']>[5]) => {
      const p = paths(o);
      p.add(0, 0, 1, RTP, SIGNALLED, override);
      p.handleTimeout(NO_ICE_KEEPALIVE_MS);
      return { out: drain<NoIceEvent>(p).transmits, timeout: p.pollTimeout() };
    };
    const stun = kinds({ keepalive: 'stun' }).out[0]!.data;
    expect([decodeStunMessage(stun).method, decodeStunMessage(stun).cls]).toEqual([StunMethod.Binding, 'indication']);
    const rtcp = kinds({ keepalive: 'rtcp' }).out[0]!.data;
    expect(rtcp[1]).toBe(201);
    const none = kinds({ keepalive: 'none', silenceTimeoutMs: 1e9 });
    expect(none.out).toEqual([]);
    expect(none.timeout).toBe(1e9); // no keepalive timer, only the silence deadline
    expect(kinds({}, { keepalive: 'none' }).out).toEqual([]);
    expect(kinds({ payloadType: 100 }, { payloadType: 101 }).out[0]!.data[1]).toBe(101);
  });

  it('with the media SSRC given, a keepalive repeats the sequence number and timestamp of the last packet sent', () => {
    const p = paths({ ssrc: 0xdeadbeef, silenceTimeoutMs: 1e9 });
    p.add(0, 0, 1, RTP, SIGNALLED);
    const media = new Uint8Array([0x80, 0, 0x12, 0x34, 0, 0, 0x10, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    p.send(100, 0, 1, media);
    p.send(101, 0, 1, new Uint8Array([0x80, 200, 0, 7, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef])); // RTCP (mux): ignored
    drain<NoIceEvent>(p);
    p.handleTimeout(101 + NO_ICE_KEEPALIVE_MS);
    const h = header(drain<NoIceEvent>(p).transmits[0]!.data);
    expect(h).toMatchObject({ ssrc: 0xdeadbeef, seq: 0x1234, ts: 0x1000, pt: 127 });
  });

  it('sends nothing after close; received data is still reported', () => {
    const p = paths();
    p.add(0, 0, 1, RTP, SIGNALLED);
    p.close();
    expect(p.pollTimeout()).toBeUndefined();
    expect(p.send(40_000, 0, 1, rtp(1))).toBe(false);
    p.handleTimeout(100_000);
    expect(from(p, 100_001, SIGNALLED)).toBe(true);
    const { transmits, events } = drain<NoIceEvent>(p);
    expect(transmits).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['state', 'data']); // checking (from add), no state after close
  });

  it('refuses bad options with RangeError', () => {
    expect(() => paths({ payloadType: 72 })).toThrow(RangeError); // RTCP's range under rtcp-mux
    expect(() => paths({ payloadType: 0 })).toThrow(RangeError); // PCMU: negotiated everywhere
    expect(() => paths({ keepalive: 'ping' as never })).toThrow(RangeError);
    expect(() => paths({ ssrc: 2 ** 32 })).toThrow(RangeError);
    expect(() => paths({ silenceTimeoutMs: 0 })).toThrow(RangeError);
    expect(() => paths({ keepaliveIntervalMs: Number.NaN })).toThrow(RangeError);
    expect(() => paths({ relatchPackets: 0.5 })).toThrow(RangeError);
    expect(() => paths().add(0, 0, 1, RTP, SIGNALLED, { payloadType: 200 })).toThrow(RangeError);
  });

  it('unusedPayloadType: the highest dynamic type no m= line uses, then unassigned ones', () => {
    expect(unusedPayloadType(['8 0 101'])).toBe(127);
    expect(unusedPayloadType(['0 127', '126 8'])).toBe(125);
    const dynamic = Array.from({ length: 32 }, (_, i) => String(96 + i)).join(' ');
    expect(unusedPayloadType([dynamic])).toBe(63);
    const all = Array.from({ length: 128 }, (_, i) => String(i)).join(' ');
    expect(unusedPayloadType([all])).toBeUndefined();
  });
});

describe('AgentMachine without ICE (virtual time)', () => {
  it('reports checking then connected from the sans-IO side, latches, and counts drops in its stats', () => {
    const m = new AgentMachine({
      random: new SeededRandom('a'),
      streams: [2],
      bases: [
        { address: RTP, component: 1 },
        { address: RTCP, component: 2 },
      ],
      withoutIce: { relatchSilenceMs: 500 },
    });
    m.gather(0);
    drain<AgentMachineEvent>(m);
    m.useWithoutIce(1, 0, 1, SIGNALLED);
    m.useWithoutIce(1, 0, 2, SIGNALLED_RTCP);
    expect(drain<AgentMachineEvent>(m).events.filter((e) => e.type === 'state')).toEqual([{ type: 'state', state: 'checking' }]);
    expect(m.send(2, 0, 1, rtp(1))).toBe(true);
    expect(drain<AgentMachineEvent>(m).transmits).toEqual([{ local: RTP, remote: SIGNALLED, data: rtp(1) }]);
    expect(m.handleReceive(3, { local: RTP, remote: RELAY, data: rtp(2) })).toBe(true);
    expect(drain<AgentMachineEvent>(m).events.map((e) => e.type)).toEqual(['latched', 'data', 'state']);
    expect(m.withoutIceDestination(0, 1)).toEqual(RELAY);
    expect(m.handleReceive(4, { local: RTP, remote: OTHER, data: rtp(3) })).toBe(true);
    const stats = m.getStats();
    expect(stats.dropped['no-ice-other-source']).toBe(1);
    expect(stats.withoutIce.map((s) => [s.component, s.droppedOtherSource])).toEqual([
      [1, 1],
      [2, 0],
    ]);
    m.handleTimeout(3 + NO_ICE_SILENCE_TIMEOUT_MS);
    expect(drain<AgentMachineEvent>(m).events).toContainEqual({ type: 'state', state: 'disconnected' });
  });
});

describe('AgentMachine makes its paths without ICE only when a component runs without ICE', () => {
  const bases = [{ address: RTP, component: 1 }];

  it('still refuses a bad withoutIce option when made, before any component runs without ICE', () => {
    expect(() => new AgentMachine({ random: new SeededRandom('o'), bases, withoutIce: { silenceTimeoutMs: 0 } })).toThrow(RangeError);
    expect(() => new AgentMachine({ random: new SeededRandom('o'), bases, withoutIce: { payloadType: 72 } })).toThrow(RangeError);
  });

  it('a component given a path after close() sends nothing: no keepalive, no deadline', () => {
    const m = new AgentMachine({ random: new SeededRandom('c'), bases, withoutIce: { keepaliveIntervalMs: 100 } });
    m.gather(0);
    drain<AgentMachineEvent>(m);
    m.close(1);
    drain<AgentMachineEvent>(m);
    m.useWithoutIce(2, 0, 1, SIGNALLED);
    expect(m.pollTimeout()).toBeUndefined();
    m.handleTimeout(5_000);
    expect(drain<AgentMachineEvent>(m).transmits).toEqual([]);
  });
});

describe('Without ICE on the virtual network, the peer behind a NAT', () => {
  /**
   * The peer is behind a port-restricted NAT and signals its private address (a SIP phone without ICE). Our agent
   * is on the public network. An attacker elsewhere on the public network sprays RTP at our port.
   */
  function setup() {
    const net = new VirtualNetwork({ seed: 7 });
    const nat = net.addNat({ name: 'nat', publicIp: '203.0.113.10', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', mappingTimeoutMs: 30_000 });
    const phoneHost = net.addHost({ name: 'phone', network: nat.lan });
    const ourHost = net.addHost({ name: 'us', address: '198.51.100.1' });
    const evilHost = net.addHost({ name: 'evil', address: '198.51.100.66' });
    const ours = ourHost.address(4000);
    const phoneLocal = phoneHost.address(5004);
    const phone = new ScriptedEndpoint();
    const evil = new ScriptedEndpoint();
    phoneHost.attach(phone);
    evilHost.attach(evil);
    const machine = new AgentMachine({ random: new SeededRandom('vn'), bases: [{ address: ours, component: 1 }] });
    const us = ourHost.attach(machine);
    machine.gather(net.now);
    return { net, nat, machine, us, phone, evil, ours, phoneLocal, evilAddr: evilHost.address(6666) };
  }

  it('latches on to the NAT mapping, ignores a stranger, keeps the binding with RTP keepalives, reports silence', () => {
    const { net, nat, machine, us, phone, evil, ours, phoneLocal, evilAddr } = setup();
    machine.useWithoutIce(net.now, 0, 1, phoneLocal); // signalled: the phone's private address, unreachable
    net.settle();
    // The phone talks first (20 ms RTP for 1 s); our answers go to the NAT's mapping, not the private address.
    for (let t = 0; t < 1000; t += 20) phone.sendAt(net.now + t, phoneLocal, ours, new Uint8Array([0x80, 0, 0, t / 20, 0, 0, 0, 0, 0, 0, 0, 1]));
    net.runFor(30);
    const latched = us.events.find((e) => e.type === 'latched');
    expect(latched).toMatchObject({ reason: 'first-packet', previous: phoneLocal });
    const mapped = (latched as { remote: TransportAddress }).remote;
    expect(mapped.address).toBe('203.0.113.10');
    expect(nat.mappings()).toHaveLength(1);
    machine.send(net.now, 0, 1, new Uint8Array([0x80, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]));
    net.runFor(1000);
    expect(phone.received.map((r) => r.datagram.data[1])).toEqual([8]);
    expect(us.events.filter((e) => e.type === 'state').map((e) => (e as { state: string }).state)).toEqual(['checking', 'connected']);
    // A stranger sends while the phone talks: nothing of it is delivered.
    const delivered = () => us.events.filter((e) => e.type === 'data').length;
    const before = delivered();
    for (let i = 0; i < 20; i++) evil.send(evilAddr, ours, new Uint8Array([0x80, 0, 0, i, 0, 0, 0, 0, 0, 0, 0, 9]));
    net.settle();
    expect(delivered()).toBe(before);
    expect(machine.getStats().dropped['no-ice-other-source']).toBe(20);
    // The phone goes silent (on hold, no RTCP): disconnected after 10 s. Our RTP keepalives (15 s idle) reach it
    // through its NAT while the mapping lives.
    net.runFor(20_000);
    expect(us.events.filter((e) => e.type === 'state').map((e) => (e as { state: string }).state)).toEqual(['checking', 'connected', 'disconnected']);
    const keepalives = phone.received.slice(1).map((r) => r.datagram.data);
    expect(keepalives).toHaveLength(1);
    expect([keepalives[0]!.length, keepalives[0]![0], keepalives[0]![1]]).toEqual([12, 0x80, 127]);
    // The phone speaks again: connected.
    phone.send(phoneLocal, ours, new Uint8Array([0x80, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 1]));
    net.settle();
    expect(us.events.filter((e) => e.type === 'state').at(-1)).toEqual({ type: 'state', state: 'connected' });
  });

  it('our keepalives keep our own NAT open for a peer that keeps sending while we do not', () => {
    const run = (keepalive: 'rtp' | 'none') => {
      const net = new VirtualNetwork({ seed: 9 });
      const nat = net.addNat({ name: 'ournat', publicIp: '203.0.113.20', filtering: 'address-and-port-dependent', mappingTimeoutMs: 30_000 });
      const ourHost = net.addHost({ name: 'us', network: nat.lan });
      const pbxHost = net.addHost({ name: 'pbx', address: '198.51.100.5' });
      const pbxAddr = pbxHost.address(10_000);
      // A COMEDIA media server: it sends back to wherever our media came from.
      let back: TransportAddress | undefined;
      const pbx = new ScriptedEndpoint({ onReceive: (_now, d) => void (back ??= d.remote) });
      pbxHost.attach(pbx);
      const machine = new AgentMachine({ random: new SeededRandom('k'), bases: [{ address: ourHost.address(4000), component: 1 }], withoutIce: { keepalive } });
      const us = ourHost.attach(machine);
      machine.gather(net.now);
      machine.useWithoutIce(net.now, 0, 1, pbxAddr);
      machine.send(net.now, 0, 1, new Uint8Array([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]));
      net.settle();
      // We go recvonly; the server sends 1 packet a second for two minutes.
      for (let t = 1000; t <= 120_000; t += 1000) net.runUntil(t), pbx.send(pbxAddr, back!, new Uint8Array([0x80, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 7]));
      net.settle();
      return us.events.filter((e) => e.type === 'data').length;
    };
    expect(run('rtp')).toBe(120);
    expect(run('none')).toBeLessThan(40); // the mapping expired 30 s after our last packet
  });

  it('re-latches when the NAT re-maps the peer after its mapping expired (keepalives off)', () => {
    const { net, nat, machine, us, phone, ours, phoneLocal } = setup();
    machine.useWithoutIce(net.now, 0, 1, phoneLocal, undefined, { keepalive: 'none' });
    const talk = (ms: number) => {
      for (let t = 0; t < ms; t += 20) phone.sendAt(net.now + t, phoneLocal, ours, new Uint8Array([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]));
      net.runFor(ms + 50);
    };
    talk(200);
    const first = us.events.filter((e) => e.type === 'latched');
    expect(first).toHaveLength(1);
    const firstMapping = (first[0] as { remote: TransportAddress }).remote;
    // The phone mutes for 40 s; nothing goes out, so the NAT (30 s) forgets the mapping and picks a new port.
    net.runFor(40_000);
    expect(nat.mappings()).toHaveLength(0);
    talk(200);
    const relatched = us.events.filter((e) => e.type === 'latched');
    expect(relatched).toHaveLength(2);
    expect(relatched[1]).toMatchObject({ reason: 'source-silent', previous: firstMapping });
    const second = (relatched[1] as { remote: TransportAddress }).remote;
    expect(second.port).not.toBe(firstMapping.port);
    // Our data follows the new mapping.
    const got = phone.received.length;
    machine.send(net.now, 0, 1, new Uint8Array([0x80, 8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]));
    net.settle();
    expect(phone.received.length).toBe(got + 1);
    // The first relatchPackets - 1 datagrams of the new mapping were dropped while the rule waited for a run.
    expect(machine.getStats().withoutIce[0]!.droppedOtherSource).toBe(NO_ICE_RELATCH_PACKETS - 1);
  });
});
