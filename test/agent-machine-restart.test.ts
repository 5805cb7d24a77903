import { describe, expect, it } from 'vitest';
import { AgentMachine } from '../src/agent-machine.js';
import { InvalidStateError } from '../src/errors.js';
import { SeededRandom } from '../src/testing/random.js';

const base = (port: number) => ({ address: { address: '10.0.0.1', port }, component: 1 });
const drainEvents = (m: AgentMachine) => {
  const out = [];
  for (let e = m.pollEvent(); e; e = m.pollEvent()) out.push(e);
  while (m.pollTransmit());
  return out;
};

/** `AgentMachine.restart(now, 'pending')` / `useBases`: the edge binds the new sockets after the credentials change. */
describe('AgentMachine restart on new bases', () => {
  it('credentials change at once; useBases gathers the new host candidates; misuse is a typed error', () => {
    const m = new AgentMachine({ random: new SeededRandom('m'), bases: [base(5000)] });
    m.gather(0);
    drainEvents(m);
    const before = m.core.getLocalParameters().ufrag;
    expect(() => m.useBases(1, [base(5100)])).toThrow(InvalidStateError);
    m.restart(1, 'pending');
    expect(m.core.getLocalParameters().ufrag).not.toBe(before);
    expect(m.bases).toEqual([]);
    m.useBases(2, [base(5100)]);
    const candidates = drainEvents(m).filter((e) => e.type === 'candidate');
    expect(candidates.map((e) => (e.type === 'candidate' ? e.candidate.port : 0))).toEqual([5100]);
    expect(m.gatheringState).toBe('complete');
    m.close(3);
    expect(() => m.restart(4, [base(5200)])).toThrow(InvalidStateError);
  });
});
