/**
 * A stalled peer (issue 16, item 8.3): the peer process is SIGSTOPped for 8 s while data flows both ways, then
 * SIGCONTed. The other side goes `disconnected` (disconnectedTimeoutMs 7 s: above the 4-6 s consent period, so a
 * healthy pair never flaps), never `failed` (consent lasts 30 s), and both are back to `connected`/`completed` on
 * the same pair within measured bounds. The stalled side's receive buffer fills with the other's data: its first
 * consent check after the wake-up goes once that backlog is read (`consent.ts`), or its answer is dropped and it
 * stays `disconnected` for another 4-6 s. The other side's checks sent during the stall are lost the same way; it
 * recovers with its next periodic check (RFC 7675 §5.1: at most 6 s later, never sooner than 4 s after the last).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ChaosPeer, connectedPair, sleep, stopAll } from './peers.js';

afterAll(stopAll, 20_000);

const STALL_MS = 8_000;

describe('a stalled peer process (SIGSTOP / SIGCONT)', () => {
  it('the other side goes disconnected, not failed, and both recover on the same pair', async () => {
    const a = await ChaosPeer.start('A', { role: 'controlling', disconnectedTimeoutMs: 7_000 });
    const b = await ChaosPeer.start('B', { role: 'controlled', disconnectedTimeoutMs: 7_000 });
    await connectedPair(a, b);
    await a.waitFor((e) => e.state === 'completed', 5_000, 'completed');
    const before = await a.report();
    const beforeB = await b.report();
    await Promise.all([a.request({ cmd: 'startData', intervalMs: 5, size: 200 }), b.request({ cmd: 'startData', intervalMs: 5, size: 200 })]);
    await sleep(500);
    const stoppedAt = Date.now();
    b.proc.kill('SIGSTOP');
    try {
      await a.waitFor((e) => e.state === 'disconnected', STALL_MS, 'A disconnected');
      await sleep(stoppedAt + STALL_MS - Date.now());
    } finally {
      b.proc.kill('SIGCONT');
    }
    const resumedAt = Date.now();
    const upAgain = (e: { state?: string | undefined }) => e.state === 'connected' || e.state === 'completed';
    const backUp = (p: ChaosPeer) => p.waitFor((e, all) => upAgain(e) && e.at >= resumedAt && !all.some((x) => x.at > e.at), 15_000, `${p.name} back up`);
    // B only learns of its stall when it runs again: give its state events a moment to arrive before reading them.
    await sleep(300);
    const bEvents = () => b.events.filter((e) => e.at >= resumedAt);
    const [aBack, bBack] = await Promise.all([backUp(a), upAgain({ state: b.state }) && !bEvents().some((e) => e.state === 'disconnected') ? Promise.resolve(undefined) : backUp(b)]);
    const aUp = aBack.at - resumedAt;
    const bUp = bBack ? bBack.at - resumedAt : 0;
    console.log(`stall ${STALL_MS} ms: A back ${aUp} ms after SIGCONT, B ${bUp} ms; B after: ${JSON.stringify(bEvents().map((e) => [e.state, e.at - resumedAt]))}`);
    const after = await a.report();
    const afterB = await b.report();
    expect(a.events.some((e) => e.state === 'failed') || b.events.some((e) => e.state === 'failed')).toBe(false);
    expect(after.selected).toEqual(before.selected);
    expect(afterB.selected).toEqual(beforeB.selected);
    expect(bUp).toBeLessThan(1_000); // the stalled side: its deferred check is answered
    expect(aUp).toBeLessThan(6_500); // the other side: its next periodic consent check
    // Data flowed again both ways after the stall.
    expect(after.rx.sinceLastMs).toBeLessThan(500);
    expect(afterB.rx.sinceLastMs).toBeLessThan(500);
  }, 40_000);
});
