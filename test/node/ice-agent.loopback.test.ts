import { afterEach, describe, expect, it } from 'vitest';
import { IceAgent } from '../../src/node/ice-agent.js';

const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;

async function connectPair(a: IceAgent, b: IceAgent): Promise<void> {
  await Promise.all([a.gather(), b.gather()]);
  const connected = (x: IceAgent) =>
    new Promise<void>((resolve, reject) => {
      if (x.state === 'connected' || x.state === 'completed') return resolve();
      x.on('statechange', (s) => {
        if (s === 'connected' || s === 'completed') resolve();
        if (s === 'failed') reject(new Error('failed'));
      });
    });
  const both = Promise.all([connected(a), connected(b)]);
  a.setRemoteParameters(b.getLocalParameters());
  b.setRemoteParameters(a.getLocalParameters());
  for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
  for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
  a.endOfRemoteCandidates();
  b.endOfRemoteCandidates();
  await both;
}

describe('IceAgent on loopback', () => {
  const agents: IceAgent[] = [];
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
  });

  it('two agents connect, select the same pair and exchange data', async () => {
    const a = new IceAgent({ ...loopback, role: 'controlling' });
    const b = new IceAgent({ ...loopback, role: 'controlled' });
    agents.push(a, b);
    await connectPair(a, b);
    const got = new Promise<string>((resolve) => b.on('data', (d) => resolve(d.toString())));
    expect(a.send(Buffer.from('hello'))).toBe(true);
    expect(await got).toBe('hello');
  });
});
