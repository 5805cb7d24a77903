/**
 * Remote candidate records reaching the sans-IO agent (issue 16): checked like parsed lines, and those that can never
 * be a peer dropped and reported, so nothing a record carries can break a later call or failure detection.
 */
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent } from '../src/agent-machine.js';
import type { Candidate } from '../src/candidates/candidate.js';
import { CandidateParseError } from '../src/errors.js';
import { SeededRandom } from '../src/testing/random.js';

function machine(): { m: AgentMachine; events: () => AgentMachineEvent[] } {
  const m = new AgentMachine({ random: new SeededRandom(1), bases: [{ address: { address: '192.0.2.10', port: 5000 }, component: 1 }], failureGraceMs: 1_000 });
  m.gather(0);
  const events: AgentMachineEvent[] = [];
  return {
    m,
    events: () => {
      for (let e = m.pollEvent(); e; e = m.pollEvent()) events.push(e);
      return events;
    },
  };
}

const base: Candidate = { foundation: '1', component: 1, transport: 'udp', priority: 2130706431, address: '192.0.2.20', port: 6000, type: 'host' };

describe('AgentMachine.addRemoteCandidate', () => {
  it('throws a typed error for a record of the wrong shape, and the agent still fails on its timers afterwards', () => {
    const { m } = machine();
    expect(() => m.addRemoteCandidate(0, 0, { ...base, priority: -1 })).toThrow(CandidateParseError);
    expect(() => m.addRemoteCandidate(0, 0, { ...base, port: 'x' } as never)).toThrow(CandidateParseError);
    // The bad records left nothing behind: parameters still apply, and with nothing to check the agent fails.
    m.setRemoteParameters(0, { ufrag: 'peer', pwd: 'p'.repeat(22) });
    m.endOfRemoteCandidates(0);
    for (let now = 0; now <= 2_000; now += 10) {
      const t = m.pollTimeout();
      if (t !== undefined && t <= now) m.handleTimeout(now);
      while (m.pollTransmit());
    }
    expect(m.core.state).toBe('failed');
  });

  it('drops, and reports, candidates that can never be a peer', () => {
    const { m, events } = machine();
    m.setRemoteParameters(0, { ufrag: 'peer', pwd: 'p'.repeat(22) });
    for (const address of ['0.0.0.0', '255.255.255.255', '224.0.0.251']) m.addRemoteCandidate(0, 0, { ...base, address });
    m.addRemoteCandidate(0, 0, { ...base, port: 0 });
    const dropped = events().filter((e): e is Extract<AgentMachineEvent, { type: 'remote-candidate-dropped' }> => e.type === 'remote-candidate-dropped');
    expect(dropped.map((e) => e.reason)).toEqual(['unspecified-address', 'broadcast-address', 'multicast-address', 'port-zero']);
    m.addRemoteCandidate(0, 0, base);
    expect(m.core.getChecklist(0).pairs.map((p) => p.remote.address)).toEqual(['192.0.2.20']);
  });
});
