import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { encodeCheckRequest, parseCheck } from '../../src/checklist/checks.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { looksLikeStun, tryDecodeStunMessage } from '../../src/stun/message.js';
import { Driver, connectPair, host, signalled } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

/** Sends a datagram each way every `stepMs` until `until`, running the network in between. */
function traffic(d: Driver, l: AgentCore, r: AgentCore, until: number, stepMs = 20): void {
  for (let t = d.now; t <= until; t += stepMs) {
    d.run(t);
    l.send(d.now, 0, 1, Buffer.from(`L${t}`));
    r.send(d.now, 0, 1, Buffer.from(`R${t}`));
    d.drain();
  }
}

/** The largest gap between application datagrams delivered to `agent` within [from, to]. */
function largestGap(d: Driver, agent: string, from: number, to: number): number {
  const times = d.delivered.filter((x) => x.to === agent && !looksLikeStun(x.datagram.data) && x.t >= from && x.t <= to).map((x) => x.t);
  let gap = times.length === 0 ? Infinity : times[0]! - from;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  return times.length === 0 ? Infinity : Math.max(gap, to - times.at(-1)!);
}

function usernameOf(data: Uint8Array): string | undefined {
  const r = tryDecodeStunMessage(data);
  if (!r.ok) return undefined;
  return parseCheck(r.message).username;
}

/**
 * RFC 8445 §9, §12.1 and RFC 7675: the previous selected pair carries data until the new session selects, and its
 * consent checks and answers keep the previous session's credentials, which the peer's old session still accepts.
 */
describe('restart: the previous pair keeps its generation', () => {
  it('the answer to a restart comes after 40 s (beyond the 30 s consent timeout): data flows throughout', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const lOld = l.getLocalParameters();
    const rOld = r.getLocalParameters();
    const start = d.now;

    // L restarts and offers; R applies the offer at once (and restarts itself), its answer reaches L 40 s later.
    l.restart();
    const lNew = l.getLocalParameters();
    r.setRemoteParameters(0, lNew);
    r.addRemoteCandidate(0, signalled(host('10.0.0.1', 5000)));
    const rNew = r.getLocalParameters();
    const sentBefore = d.sent.length;
    traffic(d, l, r, start + 40_000);

    // R's consent checks on the previous pair name the old session (L's old ufrag, R's old ufrag) ...
    const rRequests = d.sent.slice(sentBefore).filter((s) => s.agent === 'R' && s.kind === 'request' && !s.useCandidate);
    const consentNames = new Set(rRequests.map((s) => usernameOf(s.datagram.data)));
    expect(consentNames.has(`${lOld.ufrag}:${rOld.ufrag}`)).toBe(true);
    // ... and L's consent checks, still under the old names, are answered by R's old generation.
    expect(l.state).not.toBe('failed');
    expect(r.state).not.toBe('failed');
    expect(largestGap(d, 'L', start, d.now)).toBeLessThanOrEqual(100);
    expect(largestGap(d, 'R', start, d.now)).toBeLessThanOrEqual(100);

    // The answer arrives: the new session selects, both sides on the same new pair.
    const answerAt = d.now;
    l.setRemoteParameters(0, rNew);
    l.addRemoteCandidate(0, signalled(host('10.0.0.2', 6000)));
    traffic(d, l, r, answerAt + 3000);
    expect(l.state).toBe('completed');
    expect(r.state).toBe('completed');
    expect(largestGap(d, 'L', answerAt, d.now)).toBeLessThanOrEqual(100);
    expect(largestGap(d, 'R', answerAt, d.now)).toBeLessThanOrEqual(100);
    const lSel = l.getSelectedPair(0, 1)!;
    const rSel = r.getSelectedPair(0, 1)!;
    expect(lSel.nominated && rSel.nominated).toBe(true);
    expect([lSel.local.port, lSel.remote.port]).toEqual([rSel.remote.port, rSel.local.port]);

    // The old generation is dropped: a check under R's old credentials now gets 401.
    const id = new Uint8Array(12).fill(7);
    const check = encodeCheckRequest({
      transactionId: id,
      username: `${rOld.ufrag}:${lOld.ufrag}`,
      priority: 1,
      role: 'controlling',
      tieBreaker: 1n,
      useCandidate: false,
      key: shortTermKey(rOld.pwd),
    });
    r.handleReceive(d.now, { local: { address: '10.0.0.2', port: 6000 }, remote: { address: '10.0.0.1', port: 5000 }, data: check });
    let reply: Uint8Array | undefined;
    for (let x = r.pollTransmit(); x; x = r.pollTransmit()) reply ??= x.data;
    const decoded = tryDecodeStunMessage(reply!);
    expect(decoded.ok && decoded.message.cls).toBe('error');
  });

  it('a peer restart whose new parameters reach us first: our consent on the old pair keeps the old names', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const lOld = l.getLocalParameters();
    const rOld = r.getLocalParameters();
    r.restart();
    l.setRemoteParameters(0, r.getLocalParameters()); // L answers the restart; its answer is not applied by R yet
    const sentBefore = d.sent.length;
    traffic(d, l, r, d.now + 35_000);
    const names = new Set(d.sent.slice(sentBefore).filter((s) => s.agent === 'L' && s.kind === 'request').map((s) => usernameOf(s.datagram.data)));
    expect([...names]).toEqual([`${rOld.ufrag}:${lOld.ufrag}`]);
    expect(l.state).not.toBe('failed');
    expect(r.state).not.toBe('failed');
    expect(largestGap(d, 'R', sentBefore === 0 ? 0 : d.now - 35_000, d.now)).toBeLessThanOrEqual(100);
  });
});
