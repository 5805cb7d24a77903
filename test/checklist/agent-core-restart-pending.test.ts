import { describe, expect, it } from 'vitest';
import { AgentCore } from '../../src/checklist/agent-core.js';
import type { Candidate, LocalCandidate } from '../../src/candidates/candidate.js';
import { SeededRandom } from '../../src/testing/random.js';
import type { TransportAddress } from '../../src/types.js';

const A = { address: '127.0.0.1', port: 1001 };
const B = { address: '127.0.0.2', port: 1002 };
const host = (addr: TransportAddress, f: string): Candidate => ({
  foundation: f, component: 1, transport: 'udp', priority: 2130706431, address: addr.address, port: addr.port, type: 'host',
});
const local = (addr: TransportAddress, f: string): LocalCandidate => ({ ...host(addr, f), base: addr, socket: addr });

// RFC 8445 §7.3: a request that arrives before the remote parameters is answered and processed once they are known.
// That must hold for the first checks of a restarted session as much as for a first connection.
describe('AgentCore: early checks of a restarted session', () => {
  it('a check from the peer that arrives before its new parameters creates a pair and a triggered check', () => {
    const a = new AgentCore({ random: new SeededRandom('a'), role: 'controlling' });
    const b = new AgentCore({ random: new SeededRandom('b'), role: 'controlled' });
    a.addStream(1);
    b.addStream(1);
    a.addLocalCandidate(0, local(A, 'a'));
    b.addLocalCandidate(0, local(B, 'b'));
    let now = 0;
    const pump = (steps: number) => {
      for (let i = 0; i < steps; i++) {
        now += 1;
        for (const [x, y] of [[a, b], [b, a]] as const) {
          if ((x.pollTimeout() ?? Infinity) <= now) x.handleTimeout(now);
          for (let d = x.pollTransmit(); d; d = x.pollTransmit()) y.handleReceive(now, { local: d.remote, remote: d.local, data: d.data });
          while (x.pollEvent());
        }
      }
    };
    a.setRemoteParameters(0, b.getLocalParameters());
    b.setRemoteParameters(0, a.getLocalParameters());
    a.addRemoteCandidate(0, host(B, 'b'));
    b.addRemoteCandidate(0, host(A, 'a'));
    pump(200);
    expect(a.state).toBe('completed');

    a.restart();
    b.restart();
    b.setRemoteParameters(0, a.getLocalParameters());
    b.addRemoteCandidate(0, host(A, 'a'));
    now += 1;
    b.handleTimeout(now);
    let delivered = 0;
    for (let d = b.pollTransmit(); d; d = b.pollTransmit(), delivered++) a.handleReceive(now, { local: d.remote, remote: d.local, data: d.data });
    expect(delivered).toBeGreaterThan(0);
    while (a.pollTransmit());
    while (a.pollEvent());

    a.setRemoteParameters(0, b.getLocalParameters()); // no candidates yet: they are trickled later
    now += 1;
    a.handleTimeout(now);
    let checks = 0;
    for (let d = a.pollTransmit(); d; d = a.pollTransmit()) checks++;
    expect(a.getChecklist(0).pairs.length).toBe(1);
    expect(checks).toBeGreaterThan(0);
  });
});
