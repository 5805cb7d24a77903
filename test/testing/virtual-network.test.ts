import { describe, expect, it } from 'vitest';
import type { SansIoMachine } from '../../src/machine.js';
import type { Datagram, TransportAddress } from '../../src/types.js';
import { ScriptedEndpoint } from '../../src/testing/endpoint.js';
import { StepLimitError, VirtualNetwork, formatTrace, type LinkConditions } from '../../src/testing/virtual-network.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Two public hosts, each with a ScriptedEndpoint. */
function pair(seed: number | string = 1, conditions: Partial<LinkConditions> = {}, trace = true) {
  const net = new VirtualNetwork({ seed, publicConditions: conditions, trace });
  const ha = net.addHost({ name: 'a', address: '198.51.100.1' });
  const hb = net.addHost({ name: 'b', address: '198.51.100.2' });
  const a = new ScriptedEndpoint();
  const b = new ScriptedEndpoint();
  return { net, ha, hb, a, b, ea: ha.attach(a), eb: hb.attach(b), A: ha.address(5000), B: hb.address(6000) };
}

describe('VirtualNetwork basics', () => {
  it('delivers after the link delay, with local/remote as seen by the receiver', () => {
    const { net, a, b, A, B, eb } = pair(1, { delayMs: 25 });
    a.send(A, B, bytes('hi'));
    expect(net.step()).toBe(true);
    expect(net.now).toBe(25);
    expect(b.received).toHaveLength(1);
    expect(b.received[0]!.datagram.local).toEqual(B);
    expect(b.received[0]!.datagram.remote).toEqual(A);
    expect(text(b.received[0]!.datagram.data)).toBe('hi');
    expect(eb.events).toHaveLength(1);
    expect(net.step()).toBe(false);
    expect(net.stats).toMatchObject({ sent: 1, delivered: 1, steps: 1 });
  });

  it('drops a datagram whose local address is not the host’s, and counts it', () => {
    const { net, a, b, B } = pair();
    a.send({ address: '198.51.100.99', port: 1 }, B, bytes('spoof'));
    net.drive();
    expect(b.received).toHaveLength(0);
    expect(net.stats.dropped['bad-source']).toBe(1);
    expect(net.trace.at(-1)).toMatchObject({ kind: 'drop', reason: 'bad-source', node: 'a' });
  });

  it('drops unroutable, unclaimed, non-UDP, oversize and offline traffic with a reason each', () => {
    const { net, ha, hb, a, A, B } = pair(1, { mtu: 100 });
    a.send(A, { address: '192.0.2.1', port: 1 }, bytes('x'));
    a.send(A, { address: 'abc.local', port: 1 }, bytes('x'));
    a.send(A, B, new Uint8Array(101));
    hb.attachments[0]!.detach();
    a.send(A, B, bytes('nobody'));
    net.drive();
    ha.send(A, B, bytes('x'));
    const m = new ScriptedEndpoint();
    ha.attach(m);
    m.send(A, B, bytes('t'));
    // A machine asking for TCP: the virtual network carries UDP only.
    const tcp: SansIoMachine<never> = {
      handleReceive: () => false,
      handleTimeout: () => {},
      pollTransmit: (() => {
        let sent = false;
        return (): Datagram | undefined => (sent ? undefined : ((sent = true), { local: A, remote: B, data: bytes('t'), transport: 'tcp' }));
      })(),
      pollEvent: () => undefined,
      pollTimeout: () => undefined,
    };
    ha.attach(tcp);
    hb.online = false;
    net.drive();
    expect(net.stats.dropped).toEqual({ 'no-route': 2, mtu: 1, unclaimed: 1, 'host-down': 2, 'unsupported-transport': 1 });
  });

  it('offers a datagram to machines in attach order until one claims it', () => {
    const net = new VirtualNetwork();
    const h = net.addHost({ address: '198.51.100.5' });
    const only7 = new ScriptedEndpoint({ accept: (d) => d.local.port === 7 });
    const rest = new ScriptedEndpoint();
    h.attach(only7);
    h.attach(rest);
    const src = net.addHost({ address: '198.51.100.6' });
    src.send(src.address(1), h.address(7), bytes('seven'));
    src.send(src.address(1), h.address(8), bytes('eight'));
    net.drive();
    expect(only7.received.map((r) => text(r.datagram.data))).toEqual(['seven']);
    expect(rest.received.map((r) => text(r.datagram.data))).toEqual(['eight']);
  });

  it('delivers between two machines on one host through loopback without delay', () => {
    const net = new VirtualNetwork();
    const h = net.addHost({ address: '198.51.100.5' });
    const x = new ScriptedEndpoint({ accept: (d) => d.local.port === 1 });
    const y = new ScriptedEndpoint({ accept: (d) => d.local.port === 2 });
    h.attach(x);
    h.attach(y);
    x.send(h.address(1), h.address(2), bytes('self'));
    net.drive();
    expect(y.received).toHaveLength(1);
    expect(y.received[0]!.time).toBe(0);
  });

  it('multicast reaches every other host on the same network only', () => {
    const net = new VirtualNetwork();
    const nat = net.addNat();
    const [h1, h2, h3] = [0, 1, 2].map(() => net.addHost({ network: nat.lan }));
    const outside = net.addHost();
    const eps = [h1!, h2!, h3!, outside].map((h) => {
      const e = new ScriptedEndpoint();
      h.attach(e);
      return e;
    });
    h1!.send(h1!.address(5353), { address: '224.0.0.251', port: 5353 }, bytes('mdns'));
    net.drive();
    expect(eps.map((e) => e.received.length)).toEqual([0, 1, 1, 0]);
    expect(eps[1]!.received[0]!.datagram.local).toEqual({ address: '224.0.0.251', port: 5353 });
  });

  it('assigns addresses from the prefixes and refuses duplicates', () => {
    const net = new VirtualNetwork();
    const nat = net.addNat({ lanPrefix: '10.0.0.0/24' });
    expect(nat.insideIp).toBe('10.0.0.1');
    expect(net.addHost({ network: nat.lan }).ips).toEqual(['10.0.0.2']);
    expect(net.addHost({ network: nat.lan }).ips).toEqual(['10.0.0.3']);
    expect(nat.publicIp).toBe('203.0.113.1');
    expect(net.addHost().ips).toEqual(['203.0.113.2']);
    expect(() => net.addHost({ address: '203.0.113.2' })).toThrow(RangeError);
    const v6 = net.addHost({ address: '2001:DB8::0:1' });
    expect(v6.ips).toEqual(['2001:db8::1']);
  });

  it('at equal times a packet arrival is taken before a machine time-out', () => {
    const net = new VirtualNetwork({ publicConditions: { delayMs: 10 } });
    const order: string[] = [];
    const recorder: SansIoMachine<never> = {
      handleReceive: () => (order.push('packet'), true),
      handleTimeout: () => void order.push('timeout'),
      pollTransmit: () => undefined,
      pollEvent: () => undefined,
      pollTimeout: () => (order.includes('timeout') ? undefined : 10),
    };
    const h = net.addHost();
    h.attach(recorder);
    const src = net.addHost();
    src.send(src.address(1), h.address(2), bytes('x'));
    net.drive();
    expect(order).toEqual(['packet', 'timeout']);
  });

  it('settle() delivers traffic in flight and timers due before it, but does not jump to a far timer', () => {
    const { net, a, b, A, B } = pair(1, { delayMs: 10 });
    a.sendAt(5, A, B, bytes('soon'));
    a.sendAt(600_000, A, B, bytes('much later'));
    b.send(B, A, bytes('now'));
    net.settle();
    // The timer at 5 ms fell due before the in-flight packet arrived at 10 ms, so it ran; the 600 s one did not.
    expect(b.received.map((r) => text(r.datagram.data))).toEqual(['soon']);
    expect(net.now).toBe(15);
    net.drive();
    expect(net.now).toBe(600_010);
    expect(b.received).toHaveLength(2);
  });

  it('removeAddress takes an interface away: no route to it, bad-source from it; a new one works', () => {
    const { net, ha, a, b, A, B } = pair();
    expect(ha.removeAddress('198.51.100.1')).toBe(true);
    expect(ha.removeAddress('198.51.100.1')).toBe(false);
    a.send(A, B, bytes('old'));
    b.send(B, A, bytes('to old'));
    net.drive();
    expect(net.stats.dropped).toEqual({ 'bad-source': 1, 'no-route': 1 });
    const fresh = ha.addAddress(net.public, '198.51.100.1');
    a.send({ address: fresh, port: 1 }, B, bytes('new'));
    net.drive();
    expect(b.received.map((r) => text(r.datagram.data))).toEqual(['new']);
  });

  it('runUntil processes events due by then and leaves the clock there', () => {
    const { net, a, b, A, B } = pair(1, { delayMs: 10 });
    a.sendAt(5, A, B, bytes('1'));
    a.sendAt(50, A, B, bytes('2'));
    net.runUntil(30);
    expect(net.now).toBe(30);
    expect(b.received.map((r) => r.time)).toEqual([15]);
    net.runFor(100);
    expect(b.received.map((r) => r.time)).toEqual([15, 60]);
    expect(net.now).toBe(130);
  });

  it('runWhile / runUntilTrue stop at the event that changes the predicate, or at the limit', () => {
    const { net, a, b, A, B } = pair(1, { delayMs: 10 });
    for (let t = 0; t < 100; t += 10) a.sendAt(t, A, B, bytes(String(t)));
    expect(net.runUntilTrue(() => b.received.length >= 3, 1000)).toBe(true);
    expect(net.now).toBe(30);
    expect(net.runWhile(() => true, 500)).toBe(false);
    expect(net.now).toBe(530);
    expect(b.received).toHaveLength(10);
  });

  it('an onEvent callback can drive another machine (an echo) within the same run', () => {
    const { net, a, b, A, B, ha, hb } = pair(1, { delayMs: 5 });
    void ha;
    const echo = new ScriptedEndpoint({ onReceive: (_now, d, ep) => ep.send(d.local, d.remote, d.data) });
    hb.attachments[0]!.detach();
    hb.attach(echo);
    const got: string[] = [];
    const ea2 = ha.attach(new ScriptedEndpoint(), { onEvent: (e) => got.push(text(e.datagram.data)) });
    ha.attachments[0]!.detach();
    (ea2.machine as ScriptedEndpoint).send(A, B, bytes('ping'));
    net.drive();
    expect(got).toEqual(['ping']);
    expect(net.now).toBe(10);
    void a;
    void b;
  });
});

describe('link conditions', () => {
  function lossy(seed: number | string) {
    const p = pair(seed, { delayMs: 20, jitterMs: 15, loss: 0.2, reorder: 0.1, reorderDelayMs: 30, duplicate: 0.05 });
    for (let i = 0; i < 500; i++) p.a.sendAt(i * 2, p.A, p.B, bytes(String(i)));
    p.net.drive();
    return p;
  }

  it('same seed gives an identical trace; another seed a different one', () => {
    const r1 = lossy('seed-a');
    const r2 = lossy('seed-a');
    const r3 = lossy('seed-b');
    expect(formatTrace(r1.net.trace)).toBe(formatTrace(r2.net.trace));
    expect(r1.net.stats).toEqual(r2.net.stats);
    expect(formatTrace(r1.net.trace)).not.toBe(formatTrace(r3.net.trace));
  });

  it('loss, duplication and reordering happen at about the configured rates', () => {
    const { net, b } = lossy(11);
    const lost = net.stats.dropped.loss ?? 0;
    expect(net.trace.find((e) => e.reason === 'loss')).toMatchObject({ node: 'a', network: 'public' });
    expect(lost).toBeGreaterThan(60);
    expect(lost).toBeLessThan(140); // 20% of 500
    const delivered = b.received.map((r) => Number(text(r.datagram.data)));
    const dupes = delivered.length - new Set(delivered).size;
    expect(dupes).toBeGreaterThan(5);
    expect(dupes).toBeLessThan(45); // 5% of ~400
    let inversions = 0;
    for (let i = 1; i < delivered.length; i++) if (delivered[i]! < delivered[i - 1]!) inversions++;
    expect(inversions).toBeGreaterThan(10);
    // Every delay is within [delay, delay + jitter + reorderDelay].
    for (const r of b.received) {
      const sentAt = Number(text(r.datagram.data)) * 2;
      expect(r.time - sentAt).toBeGreaterThanOrEqual(20);
      expect(r.time - sentAt).toBeLessThanOrEqual(20 + 15 + 30);
    }
  });

  it('reordering alone (no jitter) holds packets back by reorderDelayMs so later ones overtake', () => {
    const { net, a, b, A, B } = pair('reorder', { delayMs: 10, reorder: 0.2, reorderDelayMs: 25 });
    for (let i = 0; i < 200; i++) a.sendAt(i, A, B, bytes(String(i)));
    net.drive();
    const late = b.received.filter((r) => r.time - Number(text(r.datagram.data)) === 35).length;
    const onTime = b.received.filter((r) => r.time - Number(text(r.datagram.data)) === 10).length;
    expect(late + onTime).toBe(200);
    expect(late).toBeGreaterThan(20);
    expect(late).toBeLessThan(60);
  });

  it('without jitter or reordering a link is FIFO', () => {
    const { net, a, b, A, B } = pair(3, { delayMs: 7 });
    for (let i = 0; i < 50; i++) a.send(A, B, bytes(String(i)));
    net.drive();
    expect(b.received.map((r) => Number(text(r.datagram.data)))).toEqual([...Array(50).keys()]);
  });

  it('setConditions({ loss: 1 }) is an outage from then on', () => {
    const { net, a, b, A, B } = pair(1, { delayMs: 10 });
    a.send(A, B, bytes('before'));
    net.step();
    net.public.setConditions({ loss: 1 });
    a.send(A, B, bytes('during'));
    net.drive();
    net.public.setConditions({ loss: 0 });
    a.send(A, B, bytes('after'));
    net.drive();
    expect(b.received.map((r) => text(r.datagram.data))).toEqual(['before', 'after']);
    expect(() => net.public.setConditions({ loss: 2 })).toThrow(RangeError);
  });
});

describe('step bounds', () => {
  it('a timer that never advances trips the per-instant bound', () => {
    const net = new VirtualNetwork({ maxStepsPerInstant: 500 });
    const stuck: SansIoMachine<never> = {
      handleReceive: () => false,
      handleTimeout: () => {},
      pollTransmit: () => undefined,
      pollEvent: () => undefined,
      pollTimeout: () => 5,
    };
    net.addHost().attach(stuck, { name: 'stuck' });
    const err = (() => {
      try {
        net.drive();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(StepLimitError);
    expect((err as StepLimitError).kind).toBe('instant');
    expect((err as StepLimitError).now).toBe(5);
    expect((err as StepLimitError).recent.at(-1)).toContain('timeout stuck');
    expect((err as StepLimitError).code).toBe('ERR_STEP_LIMIT');
  });

  it('a zero-delay ping-pong trips the per-instant bound', () => {
    const net = new VirtualNetwork({ publicConditions: { delayMs: 0 }, maxStepsPerInstant: 1000 });
    const h1 = net.addHost();
    const h2 = net.addHost();
    const bounce = new ScriptedEndpoint({ onReceive: (_n, d, ep) => ep.send(d.local, d.remote, d.data) });
    h1.attach(bounce);
    h2.attach(new ScriptedEndpoint({ onReceive: (_n, d, ep) => ep.send(d.local, d.remote, d.data) }));
    h1.send(h1.address(1), h2.address(2), bytes('x'));
    expect(() => net.drive()).toThrow(StepLimitError);
  });

  it('a run that never idles trips the total bound of drive()', () => {
    const { net, ha, hb, A, B } = pair(1, { delayMs: 1 });
    const echo = (): ScriptedEndpoint => new ScriptedEndpoint({ onReceive: (_n, d, ep) => ep.send(d.local, d.remote, d.data) });
    ha.attachments[0]!.detach();
    hb.attachments[0]!.detach();
    ha.attach(echo());
    hb.attach(echo());
    ha.send(A, B, bytes('forever'));
    expect(() => net.drive(200)).toThrow(/200 steps|201 steps/);
    expect(net.now).toBeGreaterThan(150);
  });
});

describe('performance', () => {
  it('a one-minute two-party exchange through two NATs (Ta = 50 ms each way) runs well under a second', () => {
    const net = new VirtualNetwork({ seed: 'perf', publicConditions: { delayMs: 20, jitterMs: 5, loss: 0.01 } });
    const natA = net.addNat({ mapping: 'endpoint-independent', filtering: 'endpoint-independent' });
    const natB = net.addNat({ mapping: 'endpoint-independent', filtering: 'endpoint-independent' });
    const ha = net.addHost({ network: natA.lan });
    const hb = net.addHost({ network: natB.lan });
    const peerA: TransportAddress = { address: natA.publicIp, port: 9 };
    const peerB: TransportAddress = { address: natB.publicIp, port: 9 };
    // Periodic senders in the style of ICE checks: every 50 ms, answered by the other side.
    class Pinger implements SansIoMachine<number> {
      #next = 0;
      #out: Datagram[] = [];
      count = 0;
      constructor(
        readonly local: TransportAddress,
        public remote: TransportAddress,
      ) {}
      handleReceive(_now: number, d: Datagram): boolean {
        this.count++;
        if (d.data[0] === 1) this.#out.push({ local: this.local, remote: d.remote, data: Uint8Array.of(2) });
        return true;
      }
      handleTimeout(now: number): void {
        while (this.#next <= now) {
          this.#out.push({ local: this.local, remote: this.remote, data: Uint8Array.of(1) });
          this.#next += 50;
        }
      }
      pollTransmit(): Datagram | undefined {
        return this.#out.shift();
      }
      pollEvent(): number | undefined {
        return undefined;
      }
      pollTimeout(): number {
        return this.#next;
      }
    }
    const pa = new Pinger(ha.address(4000), peerB);
    const pb = new Pinger(hb.address(4000), peerA);
    ha.attach(pa);
    hb.attach(pb);
    // Open both NATs first so the fixed external ports are known (endpoint-independent mapping).
    net.runUntil(1);
    pa.remote = natB.mappings()[0]!.external;
    pb.remote = natA.mappings()[0]!.external;
    const t0 = performance.now();
    net.runUntil(60_000);
    const elapsed = performance.now() - t0;
    expect(pa.count).toBeGreaterThan(2000);
    expect(pb.count).toBeGreaterThan(2000);
    expect(elapsed).toBeLessThan(1000);
  });
});
