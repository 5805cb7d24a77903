/**
 * Issue 13, item 3: every remote candidate the agent drops is reported (`remote-candidate-dropped`, a `warning` on
 * IceAgent) with its reason, not only counted: one that can never pair (a component the stream lacks, an address
 * family the agent has no base for), one after end-of-candidates, one past the remote limit, one evicted.
 */
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent, type AgentMachineOptions } from '../src/agent-machine.js';
import type { Candidate } from '../src/candidates/candidate.js';
import { IceAgent } from '../src/node/ice-agent.js';
import { SeededRandom } from '../src/testing/random.js';

type Dropped = Extract<AgentMachineEvent, { type: 'remote-candidate-dropped' }>;

function machine(extra: Partial<AgentMachineOptions> = {}): { m: AgentMachine; dropped: () => Dropped[] } {
  const m = new AgentMachine({ random: new SeededRandom(1), bases: [{ address: { address: '192.0.2.10', port: 5000 }, component: 1 }], ...extra });
  m.gather(0);
  const all: AgentMachineEvent[] = [];
  return {
    m,
    dropped: () => {
      for (let e = m.pollEvent(); e; e = m.pollEvent()) all.push(e);
      return all.filter((e): e is Dropped => e.type === 'remote-candidate-dropped');
    },
  };
}

const cand = (over: Partial<Candidate> = {}): Candidate => ({
  foundation: '1',
  component: 1,
  transport: 'udp',
  priority: 2130706431,
  address: '192.0.2.20',
  port: 6000,
  type: 'host',
  ...over,
});

describe('dropped remote candidates are reported', () => {
  it('a component the stream does not have', () => {
    const { m, dropped } = machine();
    m.setRemoteParameters(0, { ufrag: 'peer', pwd: 'p'.repeat(22) });
    m.addRemoteCandidate(0, 0, cand({ component: 3 }));
    expect(dropped()).toEqual([{ type: 'remote-candidate-dropped', stream: 0, candidate: cand({ component: 3 }), reason: 'component-out-of-range (the stream has 1)' }]);
    expect(m.core.getStats().dropped['remote-bad-component']).toBe(1);
  });

  it('an address family the agent has no base for (IPv6 on an IPv4-only agent, and the reverse)', () => {
    const v4 = machine();
    v4.m.addRemoteCandidate(0, 0, cand({ address: '2001:db8::20' }));
    expect(v4.dropped().map((e) => e.reason)).toEqual(['no-ipv6-base (the agent has no IPv6 address to pair it with)']);
    const v6 = machine({ bases: [{ address: { address: '2001:db8::10', port: 5000 }, component: 1 }] });
    v6.m.addRemoteCandidate(0, 0, cand());
    v6.m.addRemoteCandidate(0, 0, cand({ address: '2001:db8::20' }));
    expect(v6.dropped().map((e) => e.reason)).toEqual(['no-ipv4-base (the agent has no IPv4 address to pair it with)']);
  });

  it('keeps every family when a TURN server may give a relayed address of another family', () => {
    const { m, dropped } = machine({ turnServers: [{ server: { address: '192.0.2.99', port: 3478 }, transport: 'udp', username: 'u', credential: 'p' }] });
    m.addRemoteCandidate(0, 0, cand({ address: '2001:db8::20' }));
    expect(dropped()).toEqual([]);
  });

  it('after end-of-candidates (RFC 8838 §14) and past the remote limit', () => {
    const { m, dropped } = machine({ remoteCandidateLimit: 1 });
    m.addRemoteCandidate(0, 0, cand());
    m.addRemoteCandidate(0, 0, cand({ port: 6001 }));
    m.endOfRemoteCandidates(0);
    m.addRemoteCandidate(0, 0, cand({ port: 6002 }));
    expect(dropped().map((e) => [e.candidate.port, e.reason])).toEqual([
      [6001, 'remote-candidate-limit'],
      [6002, 'after-end-of-candidates'],
    ]);
  });

  it('reaches IceAgent as a warning', async () => {
    const agent = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1' });
    const warnings: string[] = [];
    agent.on('warning', (w) => warnings.push(w));
    try {
      await agent.gather();
      agent.setRemoteParameters({ ufrag: 'peer', pwd: 'p'.repeat(22) });
      agent.addRemoteCandidate(cand({ address: '127.0.0.1', component: 3 }));
      agent.addRemoteCandidate(cand({ address: '::1', port: 6001 }));
      await new Promise((r) => setTimeout(r, 20));
      expect(warnings).toEqual([
        expect.stringMatching(/^remote candidate candidate:1 3 udp .* dropped: component-out-of-range/),
        expect.stringMatching(/^remote candidate candidate:1 1 udp .* ::1 6001 .* dropped: no-ipv6-base/),
      ]);
    } finally {
      await agent.close();
    }
  });
});
