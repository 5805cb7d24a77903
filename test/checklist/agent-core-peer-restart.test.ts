import { describe, expect, it } from 'vitest';
import type { AgentCore } from '../../src/checklist/agent-core.js';
import { Driver, connectPair, host, signalled } from './harness.js';

const done = (...a: AgentCore[]) => () => a.every((x) => x.state === 'completed');

/** RFC 8445 §9, RFC 8839 §4.4.1.1.1: the peer restarted (new ufrag/pwd) and this agent did not. */
describe('a restart by the peer alone', () => {
  it('new ufrag and pwd from the peer: the agent takes new credentials itself and both reconnect', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const lBefore = l.getLocalParameters();
    r.restart();
    const rAfter = r.getLocalParameters();
    l.setRemoteParameters(0, rAfter);
    const lAfter = l.getLocalParameters();
    expect(lAfter.ufrag).not.toBe(lBefore.ufrag);
    expect(lAfter.pwd).not.toBe(lBefore.pwd);
    // Data keeps flowing on the old pair until the new session selects one (RFC 8445 §12.1).
    expect(l.send(d.now, 0, 1, Buffer.from('during'))).toBe(true);
    r.setRemoteParameters(0, lAfter);
    l.addRemoteCandidate(0, signalled(host('10.0.0.2', 6000)));
    r.addRemoteCandidate(0, signalled(host('10.0.0.1', 5000)));
    const selected = d.eventsOf('L', 'selected-pair').length;
    d.run(d.now + 5000, () => d.eventsOf('L', 'selected-pair').length > selected && done(l, r)());
    expect(l.state).toBe('completed');
    expect(r.state).toBe('completed');
    // The new session's checks name the new credentials.
    const last = d.requestsOf('L').at(-1)!;
    expect(Buffer.from(last.datagram.data).includes(Buffer.from(`${rAfter.ufrag}:${lAfter.ufrag}`))).toBe(true);
  });

  it('a new pwd under the old ufrag counts as a restart too (the old key can no longer check anything)', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const before = l.getLocalParameters();
    l.setRemoteParameters(0, { ...r.getLocalParameters(), pwd: 'x'.repeat(24) });
    expect(l.getLocalParameters().ufrag).not.toBe(before.ufrag);
    expect(l.getLocalParameters().pwd).not.toBe(before.pwd);
  });

  it('the same parameters again (a re-offer without restart) change nothing', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    const before = l.getLocalParameters();
    const pair = l.getSelectedPair(0, 1)!.id;
    l.setRemoteParameters(0, r.getLocalParameters());
    expect(l.getLocalParameters()).toEqual(before);
    d.run(d.now + 1000);
    expect(l.getSelectedPair(0, 1)!.id).toBe(pair);
    expect(l.state).toBe('completed');
  });

  it('after its own restart() the agent keeps the credentials it made when the peer answers', () => {
    const d = new Driver();
    const { l, r } = connectPair(d);
    d.run(5000, done(l, r));
    l.restart();
    const mine = l.getLocalParameters();
    r.setRemoteParameters(0, mine); // R: the peer restarted, so R restarts too
    l.setRemoteParameters(0, r.getLocalParameters());
    expect(l.getLocalParameters()).toEqual(mine);
  });
});
