/**
 * Conformance checks of the agent core against a scripted peer (helper H12 review): the test plays the remote agent
 * message by message.
 */
import { describe, expect, it } from 'vitest';
import { AgentCore } from '../../src/checklist/agent-core.js';
import type { AgentCoreOptions } from '../../src/checklist/types.js';
import { encodeCheckError, encodeCheckRequest, encodeCheckSuccess } from '../../src/checklist/checks.js';
import { MAX_ROLE_CONFLICTS_PER_PAIR } from '../../src/checklist/responses.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { tryDecodeStunMessage, type DecodedStunMessage } from '../../src/stun/message.js';
import type { Datagram, TransportAddress } from '../../src/types.js';
import { host, seededRandom, signalled } from './harness.js';

const PEER = { ufrag: 'PEER', pwd: 'peerpasswordpeerpassword' };
const P: TransportAddress = { address: '10.0.0.1', port: 5000 };

/** One core against a scripted peer at P. */
function scripted(opts: Partial<AgentCoreOptions>, bases: TransportAddress[]) {
  const core = new AgentCore({ random: seededRandom(42), ...opts });
  core.addStream(1);
  bases.forEach((b, i) => core.addLocalCandidate(0, host(b.address, b.port, 1, 65535 - i, `B${i}`)));
  core.setRemoteParameters(0, PEER);
  core.addRemoteCandidate(0, signalled(host(P.address, P.port, 1, 65535, 'P')));
  const lp = core.getLocalParameters();
  const out: Datagram[] = [];
  const drain = (): Datagram[] => {
    const got: Datagram[] = [];
    for (let d = core.pollTransmit(); d; d = core.pollTransmit()) got.push(d);
    out.push(...got);
    return got;
  };
  const decode = (d: Datagram): DecodedStunMessage => {
    const r = tryDecodeStunMessage(d.data);
    if (!r.ok) throw new Error('not STUN');
    return r.message;
  };
  let seq = 0;
  /** The peer sends a check to `to`. */
  const request = (now: number, to: TransportAddress, o: { useCandidate?: boolean; tieBreaker?: bigint; role?: 'controlling' | 'controlled' } = {}) => {
    const id = new Uint8Array(12).fill(++seq);
    const data = encodeCheckRequest({
      transactionId: id,
      username: `${lp.ufrag}:${PEER.ufrag}`,
      priority: 1_000_000,
      role: o.role ?? 'controlling',
      tieBreaker: o.tieBreaker ?? 1n,
      useCandidate: o.useCandidate ?? false,
      key: shortTermKey(lp.pwd),
    });
    core.handleReceive(now, { local: to, remote: P, data });
    return drain();
  };
  /** The peer answers a check the core sent, with `mapped` as XOR-MAPPED-ADDRESS. */
  const answer = (now: number, req: Datagram, mapped: TransportAddress) => {
    const m = decode(req);
    core.handleReceive(now, { local: req.local, remote: req.remote, data: encodeCheckSuccess(m.transactionId, mapped, shortTermKey(PEER.pwd)) });
    return drain();
  };
  return { core, out, drain, decode, request, answer };
}

const events = (core: AgentCore) => {
  const ev = [];
  for (let e = core.pollEvent(); e; e = core.pollEvent()) ev.push(e);
  return ev;
};

describe('USE-CANDIDATE on a pair that is Succeeded as the valid pair of another check (RFC 8445 §7.2.5.3.2 case 2, §7.3.1.5)', () => {
  it('the controlled agent sets the nominated flag of that valid pair and selects it', () => {
    const A = { address: '10.0.0.2', port: 6000 };
    const B = { address: '10.0.0.2', port: 6001 };
    const x = scripted({ role: 'controlled' }, [A, B]);
    x.core.handleTimeout(0);
    const first = x.drain().find((d) => d.local.port === A.port && x.decode(d).cls === 'request')!;
    expect(first).toBeDefined();
    // The check sent from A is seen by the peer as coming from B (a NAT or tunnel mapping, RFC 8445 Appendix B.2):
    // the valid pair is the checklist pair B -> P, which becomes Succeeded (§7.2.5.3.3) and valid.
    x.answer(10, first, B);
    const bp = x.core.getStats().pairs.find((p) => p.local.port === B.port && p.remote.port === P.port)!;
    expect(bp.state).toBe('succeeded');
    expect(bp.valid).toBe(true);
    // The controlling peer nominates B -> P: the pair is Succeeded, so its valid pair (itself) is nominated at once.
    x.request(20, B, { useCandidate: true });
    x.core.handleTimeout(20);
    x.drain();
    expect(x.core.getSelectedPair(0, 1)?.local.port).toBe(B.port);
    expect(events(x.core).filter((e) => e.type === 'selected-pair')).toHaveLength(1);
  });
});

describe('responder rules (RFC 8445 §7.3, §7.3.1.1-§7.3.1.4) against a scripted peer', () => {
  const A = { address: '10.0.0.2', port: 6000 };

  it('answers from the address the request arrived on, integrity-protected with the local pwd, mapped = source', async () => {
    const { verifyIntegrity } = await import('../../src/stun/message.js');
    const { Attr, getAttribute } = await import('../../src/stun/attributes.js');
    const x = scripted({ role: 'controlled' }, [A]);
    const [res] = x.request(0, A);
    expect(res!.local).toEqual(A);
    expect(res!.remote).toEqual(P);
    const m = x.decode(res!);
    expect(m.cls).toBe('success');
    expect(verifyIntegrity(m, shortTermKey(x.core.getLocalParameters().pwd))).toBe('ok');
    expect(verifyIntegrity(m, shortTermKey(PEER.pwd))).not.toBe('ok');
    expect(m.hasFingerprint).toBe(true);
    expect(getAttribute(m, Attr.XOR_MAPPED_ADDRESS)).toEqual(P);
  });

  it('a peer-reflexive remote candidate takes its priority from PRIORITY (§7.3.1.3)', () => {
    const x = scripted({ role: 'controlled' }, [A]);
    const Q = { address: '10.0.0.9', port: 7000 };
    const lp = x.core.getLocalParameters();
    const id = new Uint8Array(12).fill(77);
    const data = encodeCheckRequest({ transactionId: id, username: `${lp.ufrag}:${PEER.ufrag}`, priority: 1_845_501_695, role: 'controlling', tieBreaker: 1n, useCandidate: false, key: shortTermKey(lp.pwd) });
    x.core.handleReceive(0, { local: A, remote: Q, data });
    const prflx = events(x.core).find((e) => e.type === 'prflx-remote');
    expect(prflx && prflx.type === 'prflx-remote' ? prflx.candidate.priority : undefined).toBe(1_845_501_695);
  });

  it('a 487 for a request sent in a role the agent has since left does not switch it back (§7.2.5.1)', async () => {
    const { encodeCheckError } = await import('../../src/checklist/checks.js');
    const x = scripted({ role: 'controlling', tieBreaker: 10n }, [A]);
    x.core.handleTimeout(0);
    const [first] = x.drain();
    expect(x.decode(first!).cls).toBe('request');
    // The peer claims controlling with a larger tie-breaker: the agent becomes controlled (§7.3.1.1).
    x.request(5, A, { role: 'controlling', tieBreaker: 20n });
    expect(x.core.role).toBe('controlled');
    // The peer answered the agent's first check (sent as controlling) with 487: switching "to the controlled role"
    // is where the agent already is.
    const m = x.decode(first!);
    x.core.handleReceive(10, { local: first!.local, remote: first!.remote, data: encodeCheckError(m.transactionId, 487, 'Role Conflict', shortTermKey(PEER.pwd)) });
    expect(x.core.role).toBe('controlled');
    expect(events(x.core).filter((e) => e.type === 'role-change').map((e) => (e.type === 'role-change' ? e.role : ''))).toEqual(['controlled']);
  });

  it('a request on a Succeeded pair triggers no check; on an In-Progress pair it cancels and retriggers (§7.3.1.4)', () => {
    const x = scripted({ role: 'controlled' }, [A]);
    x.core.handleTimeout(0);
    const [first] = x.drain();
    // In-Progress: a new transaction at the next Ta, and the cancelled one is never retransmitted.
    x.request(100, A);
    x.core.handleTimeout(150);
    const retrigger = x.drain().filter((d) => x.decode(d).cls === 'request');
    expect(retrigger).toHaveLength(1);
    const firstId = Buffer.from(x.decode(first!).transactionId).toString('hex');
    expect(Buffer.from(x.decode(retrigger[0]!).transactionId).toString('hex')).not.toBe(firstId);
    for (let t = 200; t <= 10_000; t += 50) x.core.handleTimeout(t);
    const resent = x.drain().filter((d) => Buffer.from(x.decode(d).transactionId).toString('hex') === firstId);
    expect(resent).toHaveLength(0);
    // Succeeded: nothing further is done.
    x.answer(10_010, retrigger[0]!, A);
    expect(x.core.getStats().pairs[0]!.state).toBe('succeeded');
    x.request(10_020, A);
    for (let t = 10_020; t <= 11_000; t += 50) x.core.handleTimeout(t);
    expect(x.drain().filter((d) => x.decode(d).cls === 'request')).toHaveLength(0);
  });
});

describe('PAC timer over a failed nomination (RFC 8863 §4 updating RFC 8445 §7.2.5.3.4)', () => {
  const A = { address: '10.0.0.2', port: 6000 };

  it('a failed nomination does not fail the checklist while the PAC timer runs; the peer may nominate again', async () => {
    const { encodeCheckError } = await import('../../src/checklist/checks.js');
    const x = scripted({ role: 'controlled' }, [A]);
    x.core.endOfRemoteCandidates(0);
    x.core.handleTimeout(0);
    const [ordinary] = x.drain();
    // The controlling peer nominates the pair before it succeeded: the agent cancels its check and retriggers it.
    x.request(10, A, { useCandidate: true });
    x.core.handleTimeout(60);
    const triggered = x.drain().filter((d) => x.decode(d).cls === 'request' && d !== ordinary);
    expect(triggered).toHaveLength(1);
    // That triggered check fails (an authenticated error that is not 487: RFC 8445 §7.2.5.2.4).
    const m = x.decode(triggered[0]!);
    x.core.handleReceive(70, { local: A, remote: P, data: encodeCheckError(m.transactionId, 400, 'Bad Request', shortTermKey(PEER.pwd)) });
    expect(x.core.getStats().pairs[0]!.state).toBe('failed');
    // RFC 8863: "While the timer is still running, the ICE agent MUST NOT update a checklist state from Running to
    // Failed" (the timer runs 39.5 s from the start of checks).
    expect(x.core.getChecklist(0).state).toBe('running');
    expect(x.core.state).not.toBe('failed');
    // The peer nominates again; this time the triggered check succeeds and the pair is selected.
    x.request(1000, A, { useCandidate: true });
    x.core.handleTimeout(1050);
    const again = x.drain().filter((d) => x.decode(d).cls === 'request');
    expect(again.length).toBeGreaterThanOrEqual(1);
    x.answer(1060, again[again.length - 1]!, A);
    expect(x.core.getSelectedPair(0, 1)?.local.port).toBe(A.port);
    expect(x.core.state).toBe('completed');
  });

  it('once the PAC timer has run out, a failed nomination fails the checklist (RFC 8445 §7.3.1.5)', async () => {
    const { encodeCheckError } = await import('../../src/checklist/checks.js');
    const x = scripted({ role: 'controlled' }, [A]);
    x.core.endOfRemoteCandidates(0);
    x.core.handleTimeout(0);
    x.drain();
    const t = 40_000;
    x.request(t, A, { useCandidate: true });
    x.core.handleTimeout(t + 60);
    const reqs = x.drain().filter((d) => x.decode(d).cls === 'request');
    const last = reqs[reqs.length - 1]!;
    x.core.handleReceive(t + 70, { local: A, remote: P, data: encodeCheckError(x.decode(last).transactionId, 400, 'Bad Request', shortTermKey(PEER.pwd)) });
    expect(x.core.getChecklist(0).state).toBe('failed');
    expect(x.core.state).toBe('failed');
  });
});

describe('a peer that answers every check with 487', () => {
  it('fails the pair after a bounded number of role switches, and the agent fails on its normal timers', () => {
    const core = new AgentCore({ random: seededRandom(7), failureGraceMs: 5_000 });
    core.addStream(1);
    core.addLocalCandidate(0, host('10.0.0.9', 4000));
    core.setRemoteParameters(0, PEER);
    core.addRemoteCandidate(0, signalled(host(P.address, P.port, 1, 65535, 'P')));
    core.endOfRemoteCandidates(0);
    let checks = 0;
    let roleChanges = 0;
    for (let now = 0; now <= 60_000; now += 10) {
      const t = core.pollTimeout();
      if (t !== undefined && t <= now) core.handleTimeout(now);
      for (let d = core.pollTransmit(); d; d = core.pollTransmit()) {
        const r = tryDecodeStunMessage(d.data);
        if (!r.ok || r.message.cls !== 'request') continue;
        checks++;
        core.handleReceive(now, { local: d.local, remote: d.remote, data: encodeCheckError(r.message.transactionId, 487, 'Role Conflict', shortTermKey(PEER.pwd)) });
      }
      for (let e = core.pollEvent(); e; e = core.pollEvent()) if (e.type === 'role-change') roleChanges++;
    }
    expect(roleChanges).toBe(MAX_ROLE_CONFLICTS_PER_PAIR);
    expect(checks).toBe(MAX_ROLE_CONFLICTS_PER_PAIR + 1);
    expect(core.state).toBe('failed');
  });
});
