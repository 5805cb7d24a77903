/**
 * Remote `.local` candidates and the end-of-candidates hold (draft-ietf-mmusic-mdns-ice-candidates §3.2.1,
 * RFC 8838 §14): the resolver alone, then through AgentMachine in virtual time, with the edge answering the
 * `resolve-mdns` seam and with the in-machine responder timing out.
 */
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent } from '../../src/agent-machine.js';
import type { Candidate } from '../../src/candidates/candidate.js';
import { MdnsResponder } from '../../src/candidates/mdns.js';
import { RemoteNameResolver, type RemoteNameOutput } from '../../src/candidates/remote-mdns.js';
import { SeededRandom } from '../../src/testing/random.js';

const NAME = '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9.local';
const OTHER = '0a1b2c3d-4e5f-4a6b-8c7d-9e8f7a6b5c4d.local';

function candidate(address: string, port = 6000): Candidate {
  return { foundation: '1', component: 1, transport: 'udp', priority: 2130706431, address, port, type: 'host' };
}

function outputs(r: RemoteNameResolver): RemoteNameOutput[] {
  const out: RemoteNameOutput[] = [];
  for (let o = r.poll(); o; o = r.poll()) out.push(o);
  return out;
}

function events(m: AgentMachine): AgentMachineEvent[] {
  const out: AgentMachineEvent[] = [];
  for (let e = m.pollEvent(); e; e = m.pollEvent()) out.push(e);
  return out;
}

describe('RemoteNameResolver', () => {
  it('passes IP candidates on at once, and drops names when resolution is off', () => {
    const r = new RemoteNameResolver({ enabled: false });
    r.add(0, candidate('127.0.0.2'));
    r.add(0, candidate(NAME));
    expect(outputs(r)).toEqual([
      { type: 'candidate', stream: 0, candidate: candidate('127.0.0.2') },
      { type: 'dropped', stream: 0, candidate: candidate(NAME), reason: 'mdns-disabled' },
    ]);
    expect(r.end(0)).toBe(true);
  });

  it('asks once per name (any case), and hands every waiting candidate on with the address and its name', () => {
    const r = new RemoteNameResolver({ enabled: true });
    r.add(0, candidate(NAME, 1));
    r.add(1, candidate(NAME.toUpperCase().replace('.LOCAL', '.local'), 2));
    expect(outputs(r)).toEqual([{ type: 'resolve', name: NAME }]);
    expect(r.pending).toBe(1);
    r.resolved(NAME, '127.0.0.9');
    const out = outputs(r);
    expect(out).toHaveLength(2);
    expect(out[0]).toEqual({ type: 'candidate', stream: 0, candidate: { ...candidate('127.0.0.9', 1), mdnsName: NAME } });
    expect(out[1]).toMatchObject({ type: 'candidate', stream: 1, candidate: { address: '127.0.0.9', port: 2 } });
    r.resolved(NAME, '127.0.0.9'); // nobody waits any more: ignored
    expect(outputs(r)).toEqual([]);
  });

  it('holds a stream’s end-of-candidates until its last name resolved or failed; other streams are not held', () => {
    const r = new RemoteNameResolver({ enabled: true });
    r.add(0, candidate(NAME));
    r.add(0, candidate(OTHER));
    outputs(r);
    expect(r.end(0)).toBe(false);
    expect(r.end(1)).toBe(true);
    r.resolved(NAME, undefined, 'timeout');
    expect(outputs(r)).toEqual([{ type: 'dropped', stream: 0, candidate: candidate(NAME), reason: 'mdns-timeout' }]);
    r.resolved(OTHER, '127.0.0.8');
    expect(outputs(r).map((o) => o.type)).toEqual(['candidate', 'end-of-candidates']);
  });
});

describe('AgentMachine: remote .local candidates (virtual time)', () => {
  function machine(o: { resolveMdns?: boolean } = {}): AgentMachine {
    const m = new AgentMachine({ random: new SeededRandom('a'), bases: [{ address: { address: '127.0.0.1', port: 5000 }, component: 1 }], ...o });
    m.gather(0);
    m.setRemoteParameters(0, { ufrag: 'peer', pwd: 'peerpasswordpeerpassword' });
    events(m);
    return m;
  }

  it('asks the edge (resolve-mdns), holds end-of-candidates, and checks the candidate once answered', () => {
    const m = machine({ resolveMdns: true });
    m.addRemoteCandidate(10, 0, candidate(NAME));
    m.addRemoteCandidate(10, 0, candidate(NAME, 6001)); // same name: no second request
    m.endOfRemoteCandidates(0);
    expect(events(m).filter((e) => e.type === 'resolve-mdns')).toEqual([{ type: 'resolve-mdns', name: NAME, families: [4] }]);
    expect(m.core.getChecklist(0).pairs).toHaveLength(0);
    // The answer comes 300 ms later: the candidates were not lost to the end-of-candidates given meanwhile.
    m.mdnsResolved(310, NAME, '127.0.0.2');
    const pairs = m.core.getChecklist(0).pairs;
    expect(pairs.map((p) => [p.remote.address, p.remote.port])).toEqual([
      ['127.0.0.2', 6000],
      ['127.0.0.2', 6001],
    ]);
  });

  it('an unanswered name is dropped with a reason, then the held end-of-candidates goes on', () => {
    const m = machine({ resolveMdns: true });
    m.addRemoteCandidate(10, 0, candidate(NAME));
    m.endOfRemoteCandidates(0);
    events(m);
    // While the end is held, the core still takes candidates.
    m.addRemoteCandidate(20, 0, candidate('127.0.0.4'));
    expect(m.core.getChecklist(0).pairs).toHaveLength(1);
    m.mdnsResolved(4010, NAME, undefined);
    expect(events(m)).toContainEqual({ type: 'remote-candidate-dropped', stream: 0, candidate: candidate(NAME), reason: 'mdns-unresolved' });
    // The end reached the core now: a candidate after it is ignored (RFC 8838 §14).
    m.addRemoteCandidate(4020, 0, candidate('127.0.0.5'));
    expect(m.core.getChecklist(0).pairs.map((p) => p.remote.address)).toEqual(['127.0.0.4']);
  });

  it('without resolution, a .local candidate is dropped at once and nothing is asked', () => {
    const m = machine();
    m.addRemoteCandidate(10, 0, candidate(NAME));
    expect(events(m)).toEqual([{ type: 'remote-candidate-dropped', stream: 0, candidate: candidate(NAME), reason: 'mdns-disabled' }]);
  });

  it('with an in-machine responder: the query times out in virtual time, and the reason says so', () => {
    const local = { address: '127.0.0.1', port: 5353 };
    const responder = new MdnsResponder({ random: new SeededRandom('r'), local, group: { address: '224.0.0.251', port: 5353 }, resolveTimeoutMs: 4000 });
    const m = new AgentMachine({ random: new SeededRandom('a'), bases: [{ address: { address: '127.0.0.1', port: 5000 }, component: 1 }], mdns: { responder, local } });
    m.gather(0);
    m.setRemoteParameters(0, { ufrag: 'peer', pwd: 'peerpasswordpeerpassword' });
    m.addRemoteCandidate(0, 0, candidate(NAME));
    m.endOfRemoteCandidates(0);
    for (let t = 0; t <= 4000; t += 500) m.handleTimeout(t);
    expect(events(m)).toContainEqual({ type: 'remote-candidate-dropped', stream: 0, candidate: candidate(NAME), reason: 'mdns-timeout' });
  });
});
