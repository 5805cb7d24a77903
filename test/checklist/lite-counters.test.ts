import { describe, expect, it } from 'vitest';
import { MAX_UNPAIRED_REQUEST_COUNTS } from '../../src/checklist/context.js';
import { Driver, signalled, twoHostAgents } from './harness.js';

describe('a lite agent counts every request it answered (RFC 8445 §2.5: it pairs only at nomination)', () => {
  it('the checks before the nominating one are in the pair statistics', () => {
    const d = new Driver();
    const { l, r, lc, rc } = twoHostAgents(d, {}, { lite: true });
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rc));
    r.addRemoteCandidate(0, signalled(lc));
    d.run(10_000, () => l.state === 'completed' && r.state === 'completed');
    const sent = l.getStats().pairs[0]!;
    const answered = r.getStats().pairs[0]!;
    expect(sent.requestsSent).toBeGreaterThanOrEqual(2); // an ordinary check, then the nominating one
    expect(answered.requestsReceived).toBe(sent.requestsSent);
    expect(answered.responsesSent).toBe(sent.responsesReceived);
  });

  it('keeps counts for a bounded number of unpaired 5-tuples', async () => {
    const d = new Driver();
    const { l, r, rc } = twoHostAgents(d, {}, { lite: true });
    l.setRemoteParameters(0, r.getLocalParameters());
    r.setRemoteParameters(0, l.getLocalParameters());
    l.addRemoteCandidate(0, signalled(rc));
    // Authenticated checks from many source ports, none nominating: the lite agent answers each, pairs none.
    const { encodeCheckRequest } = await import('../../src/checklist/checks.js');
    const { shortTermKey } = await import('../../src/stun/integrity.js');
    const rp = r.getLocalParameters();
    const key = shortTermKey(rp.pwd);
    const base = { address: '10.0.0.2', port: 6000 };
    let tx = 0;
    const check = (port: number, useCandidate: boolean) => {
      const transactionId = new Uint8Array(12);
      new DataView(transactionId.buffer).setUint32(0, ++tx);
      const data = encodeCheckRequest({ transactionId, username: `${rp.ufrag}:${l.getLocalParameters().ufrag}`, priority: 1, role: 'controlling', tieBreaker: 1n, useCandidate, key });
      r.handleReceive(d.now, { local: base, remote: { address: '10.0.0.1', port }, data });
    };
    const ports = Array.from({ length: MAX_UNPAIRED_REQUEST_COUNTS * 3 }, (_, i) => 40_001 + i);
    for (const port of ports) check(port, false);
    expect(r.getStats().pairs).toHaveLength(0);
    // The first 5-tuples were remembered, those past the bound were not: their pairs count the nominating check only.
    check(ports[0]!, true);
    check(ports.at(-1)!, true);
    const byPort = new Map(r.getStats().pairs.map((p) => [p.remote.port, p.requestsReceived]));
    expect(byPort.get(ports[0]!)).toBe(2);
    expect(byPort.get(ports.at(-1)!)).toBe(1);
  });
});
