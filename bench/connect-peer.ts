/**
 * The remote peer of `bench/connect.bench.ts`, run as a child process (`node dist/bench/connect-peer.js`). It speaks
 * JSON lines: commands on stdin, replies on stdout. One child serves every run of the bench.
 *
 * - `{ "type": "start", "pacingMs"?: n, "decoys"?: DecoySpec[] }` → creates a controlled `IceAgent` on 127.0.0.1,
 *   gathers, replies `{ "type": "ready", "params", "candidates", "decoys" }` where `decoys` are local ports this
 *   process bound and closed (nothing listens there) for the parent to signal as unreachable candidates.
 * - `{ "type": "remote", "params", "candidates" }` → sets the parent's parameters and candidates; the moment they
 *   are set is `tParams`. No reply: the pipe stays silent while the two agents connect (a line arriving in the
 *   parent would be read, parsed and dispatched on the measured path).
 * - `{ "type": "report" }` → replies `{ "type": "connected", "tParams", "tConnected", "tCompleted" }` once the agent
 *   completed (at once if it already has); `tConnected` is when it was first connected, that is had a selected pair.
 *   Times are `performance.timeOrigin + performance.now()` (ms since the epoch, sub-ms resolution) so that the two
 *   processes' timestamps compare.
 * - `{ "type": "close" }` → closes the agent, replies `{ "type": "closed" }`.
 * - `{ "type": "echo-start" }` → binds a plain UDP echo socket on 127.0.0.1, replies `{ "type": "echo", "port" }`;
 *   `{ "type": "echo-stop" }` closes it and replies `{ "type": "closed" }` (the round-trip floor of the bench).
 * - `{ "type": "exit" }` → exits.
 * Loopback only: the agent binds 127.0.0.1 and talks to nothing but the parent's agent.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import { createInterface } from 'node:readline';
import type { Candidate } from '../src/candidates/candidate.js';
import type { IceParameters } from '../src/checklist/types.js';
import { IceAgent } from '../src/node/ice-agent.js';
import { deadPorts, epochNow } from './connect.bench.js';

type Command =
  | { readonly type: 'start'; readonly pacingMs?: number; readonly decoys?: number }
  | { readonly type: 'remote'; readonly params: IceParameters; readonly candidates: readonly Candidate[] }
  | { readonly type: 'report' }
  | { readonly type: 'close' }
  | { readonly type: 'echo-start' }
  | { readonly type: 'echo-stop' }
  | { readonly type: 'exit' };

function reply(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function main(): Promise<void> {
  let agent: IceAgent | undefined;
  let times: { tParams: number; tConnected: number; tCompleted?: number } | undefined;
  let reportWanted = false;
  let echo: Socket | undefined;
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const cmd = JSON.parse(line) as Command;
    switch (cmd.type) {
      case 'start': {
        agent = new IceAgent({
          includeLoopback: true,
          addressFilter: (a) => a === '127.0.0.1',
          role: 'controlled',
          ...(cmd.pacingMs !== undefined ? { pacingMs: cmd.pacingMs } : {}),
        });
        await agent.gather();
        const decoys = await deadPorts(cmd.decoys ?? 0);
        reply({ type: 'ready', params: agent.getLocalParameters(), candidates: agent.getLocalCandidates(), decoys });
        break;
      }
      case 'remote': {
        const a = agent!;
        // The moment this side has the peer's parameters (before handing them in: the first check may leave inside).
        const tParams = epochNow();
        times = undefined;
        reportWanted = false;
        const onState = (s: string): void => {
          if ((s === 'connected' || s === 'completed') && times === undefined) times = { tParams, tConnected: epochNow() };
          if (s === 'completed' && times !== undefined) {
            times.tCompleted = epochNow();
            a.off('statechange', onState);
            if (reportWanted) reply({ type: 'connected', ...times });
          }
        };
        a.on('statechange', onState);
        a.setRemoteParameters(cmd.params);
        for (const c of cmd.candidates) a.addRemoteCandidate(c);
        a.endOfRemoteCandidates();
        break;
      }
      case 'report':
        if (times?.tCompleted !== undefined) reply({ type: 'connected', ...times });
        else reportWanted = true;
        break;
      case 'close':
        await agent?.close();
        agent = undefined;
        reply({ type: 'closed' });
        break;
      case 'echo-start': {
        // The floor: a plain node:dgram echo, to measure the cross-process loopback round trip.
        const s = createSocket('udp4');
        s.on('message', (m, r) => s.send(m, r.port, r.address));
        await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
        echo = s;
        reply({ type: 'echo', port: s.address().port });
        break;
      }
      case 'echo-stop':
        await new Promise<void>((r) => (echo ? echo.close(() => r()) : r()));
        echo = undefined;
        reply({ type: 'closed' });
        break;
      case 'exit':
        await agent?.close();
        lines.close();
        return;
    }
  }
}

await main();
