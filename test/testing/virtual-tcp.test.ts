/** TCP connections of the virtual network: connect, accept, refuse, reset, in-order bytes, NAT mappings (RFC 5382). */
import { describe, expect, it } from 'vitest';
import type { SansIoMachine } from '../../src/machine.js';
import { NatPresets } from '../../src/testing/nat.js';
import { VirtualNetwork, type TcpMachine } from '../../src/testing/virtual-network.js';
import type { Datagram, TransportAddress } from '../../src/types.js';

type Ev = { type: 'tcp-connect' | 'tcp-close'; id: string; local: TransportAddress; remote: TransportAddress };

/** A scripted TCP user: connects when told, accepts on `listen`, records what happens. */
class Peer implements SansIoMachine<Ev>, TcpMachine {
  readonly log: string[] = [];
  readonly received: { from: TransportAddress; local: TransportAddress; data: number[] }[] = [];
  readonly events: Ev[] = [];
  readonly open = new Map<string, { local: TransportAddress; remote: TransportAddress }>();
  out: Datagram[] = [];
  #n = 0;
  constructor(readonly listen?: TransportAddress, readonly accept = true) {}
  readonly #asked = new Map<string, TransportAddress>();
  connect(local: TransportAddress, remote: TransportAddress): string {
    const id = `c${this.#n++}`;
    this.#asked.set(id, remote);
    this.events.push({ type: 'tcp-connect', id, local, remote });
    return id;
  }
  close(id: string): void {
    const c = this.open.get(id)!;
    this.events.push({ type: 'tcp-close', id, local: c.local, remote: c.remote });
  }
  send(id: string, data: number[]): void {
    const c = this.open.get(id)!;
    this.out.push({ local: c.local, remote: c.remote, data: new Uint8Array(data), transport: 'tcp' });
  }
  tcpConnected(_now: number, id: string, local: TransportAddress): boolean {
    this.log.push(`connected ${id} from ${local.address}:${local.port}`);
    this.open.set(id, { local, remote: this.#asked.get(id)! });
    return true;
  }
  tcpConnectFailed(_now: number, id: string): void {
    this.log.push(`failed ${id}`);
  }
  tcpAccepted(_now: number, local: TransportAddress, remote: TransportAddress): string | undefined {
    if (!this.listen || !this.accept || local.port !== this.listen.port) return undefined;
    const id = `a${this.#n++}`;
    this.open.set(id, { local, remote });
    this.log.push(`accepted ${id} from ${remote.address}`);
    return id;
  }
  tcpClosed(_now: number, id: string): void {
    this.log.push(`closed ${id}`);
    this.open.delete(id);
  }
  handleReceive(_now: number, d: Datagram): boolean {
    this.received.push({ from: d.remote, local: d.local, data: [...d.data] });
    return true;
  }
  handleTimeout(): void {}
  pollTransmit(): Datagram | undefined {
    return this.out.shift();
  }
  pollEvent(): Ev | undefined {
    return this.events.shift();
  }
  pollTimeout(): number | undefined {
    return undefined;
  }
}

describe('virtual TCP', () => {
  it('connects, carries bytes in order both ways despite loss and jitter, and resets', () => {
    const net = new VirtualNetwork({ seed: 1, publicConditions: { loss: 0.5, jitterMs: 20, reorder: 0.5 } });
    const a = net.addHost({ address: '198.51.100.1' });
    const b = net.addHost({ address: '198.51.100.2' });
    const pa = new Peer();
    const pb = new Peer({ address: '198.51.100.2', port: 443 });
    a.attach(pa);
    b.attach(pb);
    const id = pa.connect({ address: '198.51.100.1', port: 0 }, { address: '198.51.100.2', port: 443 });
    net.runFor(100);
    expect(pa.log[0]).toMatch(/^connected c0 from 198\.51\.100\.1:\d+$/);
    expect(pb.log).toEqual(['accepted a0 from 198.51.100.1']);
    for (let i = 0; i < 20; i++) pa.send(id, [i]);
    net.runFor(200);
    expect(pb.received.map((r) => r.data[0])).toEqual([...Array(20).keys()]);
    pb.send('a0', [99]);
    net.runFor(100);
    expect(pa.received.map((r) => r.data)).toEqual([[99]]);
    expect(net.tcpConnections).toBe(2);
    expect(net.resetTcp(a)).toBe(1);
    net.runFor(100);
    expect(pa.log.at(-1)).toBe('closed c0');
    expect(pb.log.at(-1)).toBe('closed a0');
    expect(net.tcpConnections).toBe(0);
  });

  it('resets an attempt nothing accepts, and a close reaches the other end', () => {
    const net = new VirtualNetwork({ seed: 2 });
    const a = net.addHost({ address: '198.51.100.1' });
    const b = net.addHost({ address: '198.51.100.2' });
    const pa = new Peer();
    const pb = new Peer({ address: '198.51.100.2', port: 443 });
    a.attach(pa);
    b.attach(pb);
    pa.connect({ address: '198.51.100.1', port: 0 }, { address: '198.51.100.2', port: 80 });
    net.runFor(100);
    expect(pa.log).toEqual(['failed c0']);
    expect(net.stats.dropped['tcp-refused']).toBe(1);
    const id = pa.connect({ address: '198.51.100.1', port: 0 }, { address: '198.51.100.2', port: 443 });
    net.runFor(100);
    pa.close(id);
    net.runFor(100);
    expect(pb.log.at(-1)).toMatch(/^closed a/);
  });

  for (const [kind, preset, samePort] of [
    ['endpoint-independent', NatPresets.fullCone, true],
    ['symmetric', NatPresets.symmetric, false],
  ] as const) {
    it(`maps TCP through a ${kind} NAT, apart from UDP, and drops unsolicited SYNs`, () => {
      const net = new VirtualNetwork({ seed: 3 });
      const nat = net.addNat({ ...preset, publicIp: '203.0.113.1' });
      const a = net.addHost({ network: nat.lan });
      const s1 = net.addHost({ address: '198.51.100.1' });
      const s2 = net.addHost({ address: '198.51.100.2' });
      const pa = new Peer({ address: a.ips[0]!, port: 7000 });
      const p1 = new Peer({ address: '198.51.100.1', port: 443 });
      const p2 = new Peer({ address: '198.51.100.2', port: 443 });
      a.attach(pa);
      s1.attach(p1);
      s2.attach(p2);
      pa.connect({ address: a.ips[0]!, port: 7001 }, { address: '198.51.100.1', port: 443 });
      pa.connect({ address: a.ips[0]!, port: 7001 }, { address: '198.51.100.2', port: 443 });
      net.runFor(200);
      const seen1 = [...p1.open.values()][0]!.remote;
      const seen2 = [...p2.open.values()][0]!.remote;
      expect(seen1.address).toBe('203.0.113.1');
      expect(seen1.port === seen2.port).toBe(samePort);
      expect(nat.tcpTranslator.mappings(net.now).length).toBe(samePort ? 1 : 2);
      expect(nat.translator.mappings(net.now)).toHaveLength(0);
      // Nobody inside gets a SYN the NAT has no mapping for.
      p1.connect({ address: '198.51.100.1', port: 0 }, { address: '203.0.113.1', port: 7000 });
      net.runFor(100);
      expect(pa.log.filter((l) => l.startsWith('accepted'))).toHaveLength(0);
    });
  }
});
