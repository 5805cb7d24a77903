/**
 * The cap on pairs aimed at one remote IP address (RFC 8445 §19.5.1; `src/checklist/address-budget.ts`): a big
 * offer whose candidates all name one third party gets at most the cap checked there, and a better candidate still
 * gets its pair. In virtual time: the agents never hear back, as from a target that does not answer.
 */
import { describe, expect, it } from 'vitest';
import { RemoteAddressBudget } from '../../src/checklist/address-budget.js';
import { AgentCore } from '../../src/checklist/agent-core.js';
import type { AgentCoreOptions } from '../../src/checklist/types.js';
import { tryDecodeStunMessage } from '../../src/stun/message.js';
import { host, seededRandom, signalled } from './harness.js';

const TARGET = '192.0.2.7';
const PEER = { ufrag: 'peer', pwd: 'p'.repeat(22) };

/** An agent with one local host candidate (per component) offered `n` candidates on TARGET, ports 1..n. */
function hostileOffer(n: number, options: Partial<AgentCoreOptions> = {}, components = 1): AgentCore {
  const a = new AgentCore({ random: seededRandom(11), ...options });
  a.addStream(components);
  for (let c = 1; c <= components; c++) a.addLocalCandidate(0, host('10.0.0.1', 5000 + c, c));
  a.setRemoteParameters(0, PEER);
  for (let c = 1; c <= components; c++) {
    for (let i = 1; i <= n; i++) a.addRemoteCandidate(0, signalled(host(TARGET, i, c, 65535 - i, `t${i}`)));
  }
  a.endOfRemoteCandidates(0);
  return a;
}

/** Runs `a` in virtual time until it fails (or `limitMs`); counts the Binding requests that left for TARGET. */
function runSilent(a: AgentCore, limitMs = 600_000): { requests: number; failedAt: number | undefined } {
  let requests = 0;
  let now = 0;
  a.handleTimeout(now);
  while (now <= limitMs && a.state !== 'failed') {
    for (let d = a.pollTransmit(); d; d = a.pollTransmit()) {
      const m = tryDecodeStunMessage(d.data);
      if (d.remote.address === TARGET && m.ok && m.message.cls === 'request') requests++;
    }
    while (a.pollEvent()) {
      // drained
    }
    const t = a.pollTimeout();
    now = t === undefined ? now + 1000 : Math.max(now, t);
    a.handleTimeout(now);
  }
  return { requests, failedAt: a.state === 'failed' ? now : undefined };
}

describe('pairs aimed at one remote IP address are capped across the checklist set', () => {
  it('100 candidates on one address: at most 32 pairs (the default), so at most 32 x 7 requests reach it; the agent still fails on its timers', () => {
    const a = hostileOffer(100);
    expect(a.getChecklist(0).pairs.length).toBe(32);
    expect(a.getStats().dropped['remote-address-limit']).toBe(68);
    const { requests, failedAt } = runSilent(a);
    expect(requests).toBeLessThanOrEqual(32 * 7);
    expect(requests).toBeGreaterThanOrEqual(32); // every pair was tried
    expect(failedAt).toBeDefined();
  });

  it('counts every component and stream together: 2 components x 40 candidates with a cap of 10 give 10 pairs', () => {
    const a = hostileOffer(40, { remoteAddressPairLimit: 10 }, 2);
    expect(a.getChecklist(0).pairs.length).toBe(10);
    const { requests } = runSilent(a);
    expect(requests).toBeLessThanOrEqual(10 * 7);
  });

  it('at the cap a better candidate takes the place of the lowest-priority pair that has sent nothing', () => {
    const a = new AgentCore({ random: seededRandom(12), remoteAddressPairLimit: 3 });
    a.addStream(1);
    a.addLocalCandidate(0, host('10.0.0.1', 5000));
    a.setRemoteParameters(0, PEER);
    for (let i = 1; i <= 3; i++) a.addRemoteCandidate(0, signalled(host(TARGET, i, 1, 1000 + i, `t${i}`)));
    a.addRemoteCandidate(0, signalled(host(TARGET, 9, 1, 60_000, 'best')));
    const ports = a.getChecklist(0).pairs.map((p) => p.remote.port);
    expect(ports).toEqual([9, 3, 2]); // the best one in, the worst one (port 1) out
    a.addRemoteCandidate(0, signalled(host(TARGET, 10, 1, 10, 'worse')));
    expect(a.getChecklist(0).pairs.map((p) => p.remote.port)).toEqual([9, 3, 2]); // a worse one is refused
    expect(a.getStats().dropped['remote-address-limit']).toBe(2);
    // Other addresses are not affected.
    a.addRemoteCandidate(0, signalled(host('192.0.2.8', 1, 1, 5, 'other')));
    expect(a.getChecklist(0).pairs.length).toBe(4);
  });

  it('one shared budget holds across agents (an IceSdpSession), and a closed agent leaves it', () => {
    const budget = new RemoteAddressBudget(10);
    const a = hostileOffer(8, { remoteAddressBudget: budget });
    const b = hostileOffer(8, { remoteAddressBudget: budget });
    expect(a.getChecklist(0).pairs.length).toBe(8);
    expect(b.getChecklist(0).pairs.length).toBe(2);
    expect(budget.pairsTo(TARGET)).toBe(10);
    a.close();
    expect(budget.pairsTo(TARGET)).toBe(2);
    const c = hostileOffer(8, { remoteAddressBudget: budget });
    expect(c.getChecklist(0).pairs.length).toBe(8);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new RemoteAddressBudget(0)).toThrow(RangeError);
    expect(() => new AgentCore({ random: seededRandom(1), remoteAddressPairLimit: 1.5 })).toThrow(RangeError);
  });
});
