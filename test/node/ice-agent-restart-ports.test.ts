/**
 * `IceAgent.restart()` on loopback: new host sockets by default (as libwebrtc gathers new ports), the old ones
 * carrying the previous pair until the new session selects and closed after it; `restartKeepsPorts` keeps them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { IceAgent } from '../../src/node/ice-agent.js';
import { agentPool, connectPair, isUp } from './agent-helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}
const udpHandles = () => process.getActiveResourcesInfo().filter((x) => x === 'UDPWrap' || x === 'UDPWRAP').length;

/** Restarts `a`, then exchanges parameters and the new candidates as an offer/answer would. */
async function restartBoth(a: IceAgent, b: IceAgent): Promise<void> {
  a.restart();
  await a.gather(); // the offer carries the new candidates
  b.restart(); // answering a restart: b restarts too (IceSdpSession does this before it applies the offer)
  await b.gather();
  b.setRemoteParameters(a.getLocalParameters());
  for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
  b.endOfRemoteCandidates();
  a.setRemoteParameters(b.getLocalParameters());
  for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
  a.endOfRemoteCandidates();
}

describe('IceAgent restart on new ports', () => {
  const { make, closeAll } = agentPool();
  afterEach(closeAll);

  it('binds new sockets, keeps data on the old pair meanwhile, selects a pair on the new ports, closes the old sockets', async () => {
    const before = udpHandles();
    const a = make({ role: 'controlling' });
    const b = make({ role: 'controlled' });
    await connectPair(a, b);
    expect(await until(() => a.state === 'completed' && b.state === 'completed', 3000)).toBe(true);
    const oldA = a.getSelectedCandidatePair()!;
    const oldB = b.getSelectedCandidatePair()!;
    expect(udpHandles()).toBe(before + 2);
    const gotA: number[] = [];
    const gotB: number[] = [];
    a.on('data', () => gotA.push(Date.now()));
    b.on('data', () => gotB.push(Date.now()));
    const pump = setInterval(() => {
      a.send(Buffer.from('x'));
      b.send(Buffer.from('y'));
    }, 10);
    try {
      const start = Date.now();
      await restartBoth(a, b);
      expect(a.getLocalCandidates().every((c) => c.port !== oldA.local.port)).toBe(true);
      expect(udpHandles()).toBe(before + 4); // old and new sockets while the previous pair carries data
      const moved = () => {
        const pa = a.getSelectedCandidatePair();
        const pb = b.getSelectedCandidatePair();
        return pa !== undefined && pb !== undefined && pa.local.port !== oldA.local.port && pb.local.port !== oldB.local.port;
      };
      expect(await until(moved, 5000)).toBe(true);
      expect(await until(() => udpHandles() === before + 2, 2000)).toBe(true);
      await sleep(100);
      const end = Date.now();
      for (const got of [gotA, gotB]) {
        const times = [start, ...got.filter((t) => t >= start && t <= end), end];
        let gap = 0;
        for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
        expect(times.length).toBeGreaterThan(10);
        // A datagram every 10 ms each way: no gap near a lost path (timers on a loaded machine jitter by tens of ms).
        expect(gap).toBeLessThan(100);
      }
      const pa = a.getSelectedCandidatePair()!;
      const pb = b.getSelectedCandidatePair()!;
      expect([pa.local.port, pa.remote.port]).toEqual([pb.remote.port, pb.local.port]);
      expect(isUp(a.state) && isUp(b.state)).toBe(true);
    } finally {
      clearInterval(pump);
    }
  });

  it('two restarts in a row share one set of new sockets; the last credentials win', async () => {
    const before = udpHandles();
    const a = make({ role: 'controlling' });
    const b = make({ role: 'controlled' });
    await connectPair(a, b);
    const oldPort = a.getSelectedCandidatePair()!.local.port;
    a.restart();
    const first = a.getLocalParameters().ufrag;
    a.restart();
    const second = a.getLocalParameters().ufrag;
    expect(second).not.toBe(first);
    await a.gather();
    expect(udpHandles()).toBe(before + 3); // b's, a's old and a's one new socket
    b.restart();
    await b.gather();
    b.setRemoteParameters(a.getLocalParameters());
    for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
    a.setRemoteParameters(b.getLocalParameters());
    for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
    expect(await until(() => a.state === 'completed' && a.getSelectedCandidatePair()!.local.port !== oldPort, 5000)).toBe(true);
    expect(await until(() => udpHandles() === before + 2, 2000)).toBe(true);
  });

  it('restartKeepsPorts: the same sockets and candidates serve the new session', async () => {
    const before = udpHandles();
    const a = make({ role: 'controlling', restartKeepsPorts: true });
    const b = make({ role: 'controlled', restartKeepsPorts: true });
    await connectPair(a, b);
    const ports = a.getLocalCandidates().map((c) => c.port);
    const old = a.getLocalParameters().ufrag;
    await restartBoth(a, b);
    expect(a.getLocalParameters().ufrag).not.toBe(old);
    expect(a.getLocalCandidates().map((c) => c.port)).toEqual(ports);
    expect(udpHandles()).toBe(before + 2);
    expect(await until(() => a.state === 'completed' && b.state === 'completed' && a.getSelectedCandidatePair()?.local.port === ports[0], 5000)).toBe(true);
  });
});
