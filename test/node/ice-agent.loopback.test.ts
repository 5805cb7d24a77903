/**
 * `IceAgent` on real UDP sockets, loopback only (127.0.0.1): connection, ordered data, ICE restart with data
 * flowing, handle/timer hygiene after close, two components, and role conflict repair.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { sharedScheduler } from '../../src/node/driver.js';
import { IceAgent } from '../../src/node/ice-agent.js';
import { agentPool, connectPair, isUp, loopback } from './agent-helpers.js';



/** Resolves with the next event `name` of `x` that satisfies `pred`, or rejects after `ms`. */
function next<T extends unknown[]>(x: IceAgent, name: 'selectedcandidatepairchange' | 'data', pred: (...a: T) => boolean, ms = 5000): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => {
      x.off(name, on as never);
      reject(new Error(`no ${name} within ${ms} ms`));
    }, ms);
    const on = (...a: T) => {
      if (!pred(...a)) return;
      clearTimeout(t);
      x.off(name, on as never);
      resolve(a);
    };
    x.on(name, on as never);
  });
}



const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function seqOf(d: Buffer): number {
  return d.readUInt32BE(0);
}

function packet(seq: number, size = 32): Buffer {
  const b = Buffer.alloc(size, 0xab);
  b.writeUInt32BE(seq, 0);
  return b;
}

/** Waits until `cond()` holds (polling every 5 ms) or `ms` passed; returns whether it held. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

function resourceCounts(): { udp: number; timeout: number } {
  const r = process.getActiveResourcesInfo();
  // Node names the UDP handle 'UDPWrap' (the async-hooks type is UDPWRAP); accept both spellings.
  return { udp: r.filter((x) => x === 'UDPWrap' || x === 'UDPWRAP').length, timeout: r.filter((x) => x === 'Timeout').length };
}

describe('IceAgent on loopback', () => {
  const { make, closeAll } = agentPool();
  afterEach(closeAll);

  it('two agents connect, select the same pair and exchange data', async () => {
    const a = make({ role: 'controlling' });
    const b = make({ role: 'controlled' });
    const selA = next<[unknown, number]>(a, 'selectedcandidatepairchange', () => true);
    const selB = next<[unknown, number]>(b, 'selectedcandidatepairchange', () => true);
    await connectPair(a, b);
    await Promise.all([selA, selB]);
    const pa = a.getSelectedCandidatePair()!;
    const pb = b.getSelectedCandidatePair()!;
    // The two ends of one pair: A's local is B's remote and the other way round.
    expect(pa.local.port).toBe(pb.remote.port);
    expect(pb.local.port).toBe(pa.remote.port);
    const got = next<[Buffer]>(b, 'data', () => true);
    expect(a.send(Buffer.from('hello'))).toBe(true);
    expect((await got)[0].toString()).toBe('hello');
  });

  it('carries 10,000 datagrams each way, in order and without loss when paced', async () => {
    const a = make({ role: 'controlling' });
    const b = make({ role: 'controlled' });
    await connectPair(a, b);
    const N = 10_000;
    const atB: number[] = [];
    const atA: number[] = [];
    b.on('data', (d) => atB.push(seqOf(d)));
    a.on('data', (d) => atA.push(seqOf(d)));
    const started = Date.now();
    let refused = 0;
    for (let i = 0; i < N; i++) {
      if (!a.send(packet(i))) refused++;
      if (!b.send(packet(i))) refused++;
      // Backpressure-friendly pacing: 25 per direction per loop turn (libuv reads up to 32 datagrams per socket per
      // turn), and never more than 500 in flight, so the loopback socket buffers cannot overflow.
      if (i % 25 === 24) {
        await tick();
        while (i + 1 - Math.min(atA.length, atB.length) > 500 && Date.now() - started < 8000) await tick();
      }
    }
    expect(refused).toBe(0);
    await until(() => atA.length === N && atB.length === N, 3000);
    expect(Date.now() - started).toBeLessThan(10_000);
    for (const got of [atA, atB]) {
      // Order within the pair: strictly increasing sequence numbers (whatever arrived).
      let ordered = true;
      for (let i = 1; i < got.length; i++) if (got[i]! <= got[i - 1]!) ordered = false;
      expect(ordered).toBe(true);
      expect(got.length).toBe(N);
    }
    const stats = a.getStats()!;
    const sel = stats.pairs.find((p) => p.nominated && p.valid);
    expect(sel?.bytesReceived).toBeGreaterThanOrEqual(N * 32);
  });

  it('restart: both sides take new credentials, data keeps flowing, a new pair is selected', async () => {
    const a = make({ role: 'controlling' });
    const b = make({ role: 'controlled' });
    await connectPair(a, b);
    await until(() => a.getSelectedCandidatePair() !== undefined && b.getSelectedCandidatePair() !== undefined, 2000);
    const oldA = a.getLocalParameters();
    const oldB = b.getLocalParameters();
    const statsBefore = new Set(a.getStats()!.pairs.map((p) => p.id));

    // Data in both directions every 2 ms for the whole restart.
    const atA: number[] = [];
    const atB: number[] = [];
    a.on('data', (d) => atA.push(seqOf(d)));
    b.on('data', (d) => atB.push(seqOf(d)));
    let seq = 0;
    let sendFailures = 0;
    const pump = setInterval(() => {
      if (!a.send(packet(seq))) sendFailures++;
      if (!b.send(packet(seq))) sendFailures++;
      seq++;
    }, 2);
    try {
      await sleep(20);
      const newSelA = next(a, 'selectedcandidatepairchange', () => true);
      const newSelB = next(b, 'selectedcandidatepairchange', () => true);
      a.restart();
      const newA = a.getLocalParameters();
      expect(newA.ufrag).not.toBe(oldA.ufrag);
      expect(newA.pwd).not.toBe(oldA.pwd);
      // Offer with new credentials reaches B: B must restart too (RFC 8839 §4.4.2.1) and answer with new ones.
      b.setRemoteParameters(newA);
      const newB = b.getLocalParameters();
      expect(newB.ufrag).not.toBe(oldB.ufrag);
      expect(newB.pwd).not.toBe(oldB.pwd);
      const seqAtRestart = seq;
      await sleep(10); // the answer takes a while: data must keep flowing on the previous pair meanwhile
      const midA = atA.filter((s) => s >= seqAtRestart).length;
      const midB = atB.filter((s) => s >= seqAtRestart).length;
      expect(midA).toBeGreaterThan(0);
      expect(midB).toBeGreaterThan(0);
      a.setRemoteParameters(newB);
      for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
      for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
      a.endOfRemoteCandidates();
      b.endOfRemoteCandidates();
      await Promise.all([newSelA, newSelB]);
      const seqAtSelected = seq;
      await sleep(20);
      expect(atA.filter((s) => s >= seqAtSelected).length).toBeGreaterThan(0);
      expect(atB.filter((s) => s >= seqAtSelected).length).toBeGreaterThan(0);
    } finally {
      clearInterval(pump);
    }
    expect(sendFailures).toBe(0);
    expect(isUp(a.state) && isUp(b.state)).toBe(true);
    // The selected pair is a pair of the new session (a new checklist entry), not the old one.
    const selectedNow = a.getStats()!.pairs.filter((p) => p.nominated && p.valid && !statsBefore.has(p.id));
    expect(selectedNow.length).toBeGreaterThan(0);
    // Order held within each direction across the switch.
    for (const got of [atA, atB]) for (let i = 1; i < got.length; i++) expect(got[i]!).toBeGreaterThan(got[i - 1]!);
  });

  it('close() leaves no socket, no Node timer and no scheduler entry behind', async () => {
    await tick();
    const before = resourceCounts();
    const entriesBefore = sharedScheduler.size;
    const a = new IceAgent({ ...loopback, role: 'controlling' });
    const b = new IceAgent({ ...loopback, role: 'controlled' });
    try {
      await connectPair(a, b);
      const got = next(b, 'data', () => true);
      a.send(Buffer.from('x'));
      await got;
      const during = resourceCounts();
      expect(during.udp).toBe(before.udp + 2);
      expect(sharedScheduler.size).toBeGreaterThan(entriesBefore);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    await tick();
    const after = resourceCounts();
    expect(after.udp).toBe(before.udp);
    expect(after.timeout).toBeLessThanOrEqual(before.timeout);
    expect(sharedScheduler.size).toBe(entriesBefore);
    expect(a.state).toBe('closed');
    expect(a.send(Buffer.from('late'))).toBe(false);
  });

  it('two components: both get a selected pair and carry their own data', async () => {
    const a = make({ role: 'controlling', components: 2 });
    const b = make({ role: 'controlled', components: 2 });
    const sel = (x: IceAgent) => {
      const seen = new Set<number>();
      return next<[unknown, number]>(x, 'selectedcandidatepairchange', (_p, c) => (seen.add(c), seen.size === 2));
    };
    const sa = sel(a);
    const sb = sel(b);
    await connectPair(a, b);
    await Promise.all([sa, sb]);
    expect(a.getLocalCandidates().map((c) => c.component).sort()).toEqual([1, 2]);
    const p1 = a.getSelectedCandidatePair(1)!;
    const p2 = a.getSelectedCandidatePair(2)!;
    expect(p1.local.port).not.toBe(p2.local.port);
    const got: [string, number][] = [];
    b.on('data', (d, c) => got.push([d.toString(), c]));
    expect(a.send(Buffer.from('rtp'), 1)).toBe(true);
    expect(a.send(Buffer.from('rtcp'), 2)).toBe(true);
    const back = next<[Buffer, number]>(a, 'data', (_d, c) => c === 2);
    expect(b.send(Buffer.from('rtcp-back'), 2)).toBe(true);
    expect((await back)[0].toString()).toBe('rtcp-back');
    await until(() => got.length === 2, 2000);
    expect(got.sort()).toEqual([['rtcp', 2], ['rtp', 1]]);
  });

  it('a throwing data listener is reported as an error event and data keeps flowing (RTP-like fast path)', async () => {
    const a = make({ role: 'controlling' });
    const b = make({ role: 'controlled' });
    await connectPair(a, b);
    const errors: unknown[] = [];
    b.on('error', (e) => errors.push(e));
    const got: number[] = [];
    b.on('data', (d) => {
      got.push(d[1]!);
      if (d[1] === 1) throw new Error('listener bug');
    });
    // First byte 0x80: RTP per RFC 7983, the path that bypasses the driver.
    for (let i = 1; i <= 3; i++) {
      expect(a.send(Buffer.from([0x80, i]))).toBe(true);
      await sleep(5);
    }
    await until(() => got.length === 3, 2000);
    expect(got).toEqual([1, 2, 3]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('listener bug');
    expect(isUp(b.state)).toBe(true);
  });

  it('IPv6 loopback (::1): connects and carries data', async () => {
    const v6 = { includeLoopback: true, addressFilter: (x: string) => x === '::1' } as const;
    const a = make({ ...v6, role: 'controlling' });
    const b = make({ ...v6, role: 'controlled' });
    await connectPair(a, b);
    await until(() => a.getSelectedCandidatePair() !== undefined, 2000);
    expect(a.getSelectedCandidatePair()?.remote.address).toBe('::1');
    const got = next<[Buffer]>(b, 'data', () => true);
    expect(a.send(Buffer.from('v6'))).toBe(true);
    expect((await got)[0].toString()).toBe('v6');
  });

  it('role conflict: two controlling agents still connect, one ends controlled', async () => {
    const a = make({ role: 'controlling' });
    const b = make({ role: 'controlling' });
    await connectPair(a, b);
    await until(() => a.getSelectedCandidatePair() !== undefined && b.getSelectedCandidatePair() !== undefined, 3000);
    expect([a.role, b.role].sort()).toEqual(['controlled', 'controlling']);
    expect(a.getSelectedCandidatePair()).toBeDefined();
    expect(b.getSelectedCandidatePair()).toBeDefined();
    const got = next<[Buffer]>(a, 'data', () => true);
    expect(b.send(Buffer.from('after conflict'))).toBe(true);
    expect((await got)[0].toString()).toBe('after conflict');
  });
});
