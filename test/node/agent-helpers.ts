/** Shared helpers for the real-socket IceAgent tests (loopback only). */
import { IceAgent, type IceAgentOptions } from '../../src/node/ice-agent.js';

/** Host candidates on 127.0.0.1 only: tests never expose another interface. */
export const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;

export const isUp = (s: string): boolean => s === 'connected' || s === 'completed';

/** Resolves when `x` is connected or completed; rejects on failed/closed or after `ms`. */
export function connected(x: IceAgent, ms = 5000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (isUp(x.state)) return resolve();
    const t = setTimeout(() => reject(new Error(`not connected within ${ms} ms (state ${x.state})`)), ms);
    const on = (s: string) => {
      if (isUp(s) || s === 'failed' || s === 'closed') {
        clearTimeout(t);
        x.off('statechange', on);
        if (isUp(s)) resolve();
        else reject(new Error(`agent went ${s}`));
      }
    };
    x.on('statechange', on);
  });
}

/** The next datagram `x` receives, as text; rejects after `ms`. */
export function nextData(x: IceAgent, ms = 3000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no data')), ms);
    x.once('data', (d) => {
      clearTimeout(t);
      resolve(d.toString());
    });
  });
}

/** Exchanges parameters and every gathered candidate both ways (full signalling, then end-of-candidates). */
export function signal(a: IceAgent, b: IceAgent): void {
  a.setRemoteParameters(b.getLocalParameters());
  b.setRemoteParameters(a.getLocalParameters());
  for (const c of b.getLocalCandidates()) a.addRemoteCandidate(c);
  for (const c of a.getLocalCandidates()) b.addRemoteCandidate(c);
  a.endOfRemoteCandidates();
  b.endOfRemoteCandidates();
}

/** Gathers both agents, signals, and waits until both are connected. */
export async function connectPair(a: IceAgent, b: IceAgent, ms = 5000): Promise<void> {
  await Promise.all([a.gather(), b.gather()]);
  const both = Promise.all([connected(a, ms), connected(b, ms)]);
  signal(a, b);
  await both;
}

/**
 * Creates loopback agents for one `describe` block and remembers them: call `closeAll()` in `afterEach` so no
 * socket or timer outlives its test.
 */
export function agentPool(): { make: (o?: IceAgentOptions) => IceAgent; closeAll: () => Promise<void> } {
  const agents: IceAgent[] = [];
  return {
    make: (o: IceAgentOptions = {}) => {
      const x = new IceAgent({ ...loopback, ...o });
      agents.push(x);
      return x;
    },
    closeAll: async () => {
      await Promise.all(agents.splice(0).map((a) => a.close()));
    },
  };
}
