/**
 * RFC 7675 §5.1 after a stalled process: a consent check found due more than a second late is sent 50 ms later,
 * once the edge has read what queued up in its sockets, so its one transmission is not answered into a full
 * receive buffer (the chaos suite's SIGSTOP test shows the real effect: test/chaos/stall.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { tryDecodeStunMessage } from '../../src/stun/message.js';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { Driver, connectPair } from './harness.js';

function requestsOut(a: AgentCore): number {
  let n = 0;
  for (let d = a.pollTransmit(); d; d = a.pollTransmit()) {
    const m = tryDecodeStunMessage(d.data);
    if (m.ok && m.message.cls === 'request') n++;
  }
  return n;
}

describe('consent checks after a stall', () => {
  it('a check due long ago goes 50 ms after the wake-up, not at it; the next one keeps the 4-6 s period', () => {
    const d = new Driver();
    const { l } = connectPair(d);
    d.run(3000);
    expect(l.state).toBe('completed');
    requestsOut(l);
    // The process slept 12 s: its first timer run finds the consent check 6-8 s overdue.
    const wake = 15_000;
    l.handleTimeout(wake);
    expect(requestsOut(l)).toBe(0);
    const next = l.pollTimeout()!;
    expect(next).toBeLessThanOrEqual(wake + 50);
    l.handleTimeout(wake + 50);
    expect(requestsOut(l)).toBe(1);
    // Not due again before 4 s.
    l.handleTimeout(wake + 3_900);
    expect(requestsOut(l)).toBe(0);
  });
});
