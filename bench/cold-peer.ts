/**
 * Child process of `bench/cold.bench.ts` (`node dist/bench/cold-peer.js <mode> ...`). It has no static import: the
 * point is to measure what a fresh process pays for icewire, so nothing else may be loaded or compiled first.
 * Replies go over the IPC channel (`process.send`), and the parent stays silent while a measured window is open.
 *
 * Modes:
 * - `import <url>`: `await import(url)`, replies `{ wallMs, cpuMs }`, exits.
 * - `agent <role>`: an `IceAgent` on 127.0.0.1. `{ type: 'start' }` gathers and replies `ready` (parameters,
 *   candidates); `{ type: 'remote' }` hands in the peer's and measures `process.cpuUsage()` from
 *   `setRemoteParameters` to the first `selectedcandidatepairchange` and to `connected`; `{ type: 'report' }` replies
 *   with those; `{ type: 'close' }` closes the agent (replies `closed`); `{ type: 'exit' }` exits.
 * - `floor <role>`: the same commands, but a plain `node:dgram` socket instead of an agent: the `active` side sends
 *   a 100-byte request and the other answers it, both ways (the four datagrams of the smallest ICE exchange).
 *   "Connected" is when this side has had its answer and answered the peer's request.
 * @module
 */
import type { Socket } from 'node:dgram';
import type { Candidate } from '../src/candidates/candidate.js';
import type { IceParameters } from '../src/checklist/types.js';

type Command =
  | { readonly type: 'start' }
  | { readonly type: 'remote'; readonly params: IceParameters; readonly candidates: readonly Candidate[]; readonly port?: number }
  | { readonly type: 'report' }
  | { readonly type: 'close' }
  | { readonly type: 'exit' };

const send = (m: object): void => {
  process.send!(m);
};
const cpuMs = (from: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
};

async function importMode(url: string): Promise<void> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await import(url);
  const wallMs = performance.now() - t0;
  send({ type: 'import', wallMs, cpuMs: cpuMs(cpu0) });
  process.disconnect();
}

/** What the measured window of one connection found. */
interface Times {
  selectedCpuMs?: number;
  connectedCpuMs?: number;
  /** `getSelectedCandidatePair()` returned a pair when `connected` fired. */
  selectedAtConnected?: boolean;
}

async function agentMode(role: 'controlling' | 'controlled'): Promise<void> {
  const { IceAgent } = await import('../src/index.js');
  type Agent = InstanceType<typeof IceAgent>;
  let agent: Agent | undefined;
  let times: Times = {};
  let reportWanted = false;
  const complete = (): boolean => times.selectedCpuMs !== undefined && times.connectedCpuMs !== undefined;
  const maybeReport = (): void => {
    if (reportWanted && complete()) {
      reportWanted = false;
      send({ type: 'times', ...times });
    }
  };
  process.on('message', (cmd: Command) => {
    void (async () => {
      switch (cmd.type) {
        case 'start': {
          agent = new IceAgent({ includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1', role });
          await agent.gather();
          send({ type: 'ready', params: agent.getLocalParameters(), candidates: agent.getLocalCandidates() });
          break;
        }
        case 'remote': {
          const a = agent!;
          times = {};
          const cpu0 = process.cpuUsage();
          a.once('selectedcandidatepairchange', () => {
            times.selectedCpuMs = cpuMs(cpu0);
            maybeReport();
          });
          const onState = (s: string): void => {
            if (s !== 'connected' && s !== 'completed') return;
            times.connectedCpuMs = cpuMs(cpu0);
            times.selectedAtConnected = a.getSelectedCandidatePair() !== undefined;
            a.off('statechange', onState);
            maybeReport();
          };
          a.on('statechange', onState);
          a.setRemoteParameters(cmd.params);
          for (const c of cmd.candidates) a.addRemoteCandidate(c);
          a.endOfRemoteCandidates();
          break;
        }
        case 'report':
          reportWanted = true;
          maybeReport();
          break;
        case 'close':
          await agent?.close();
          agent = undefined;
          send({ type: 'closed' });
          break;
        case 'exit':
          await agent?.close();
          process.disconnect();
          break;
      }
    })();
  });
  send({ type: 'up' });
}

async function floorMode(): Promise<void> {
  const { createSocket } = await import('node:dgram');
  let socket: Socket | undefined;
  let cpu0: NodeJS.CpuUsage | undefined;
  let times: Times = {};
  let reportWanted = false;
  const maybeReport = (): void => {
    if (reportWanted && times.connectedCpuMs !== undefined) {
      reportWanted = false;
      send({ type: 'times', ...times });
    }
  };
  process.on('message', (cmd: Command) => {
    void (async () => {
      switch (cmd.type) {
        case 'start': {
          // Both sides send a request and answer the other's: the role does not matter here. The listener is set
          // now: the peer's request may arrive before this side's `remote` command.
          const s = createSocket('udp4');
          const response = Buffer.alloc(100, 2);
          let answered = false;
          let gotAnswer = false;
          times = {};
          s.on('message', (m, r) => {
            if (m[0] === 1) {
              s.send(response, r.port, r.address);
              answered = true;
            } else gotAnswer = true;
            if (answered && gotAnswer && times.connectedCpuMs === undefined && cpu0 !== undefined) {
              times.connectedCpuMs = times.selectedCpuMs = cpuMs(cpu0);
              maybeReport();
            }
          });
          await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
          socket = s;
          send({ type: 'ready', params: { ufrag: 'x', pwd: 'x' }, candidates: [], port: s.address().port });
          break;
        }
        case 'remote': {
          cpu0 = process.cpuUsage();
          socket!.send(Buffer.alloc(100, 1), cmd.port!, '127.0.0.1');
          break;
        }
        case 'report':
          reportWanted = true;
          maybeReport();
          break;
        case 'close':
          await new Promise<void>((r) => (socket ? socket.close(() => r()) : r()));
          socket = undefined;
          send({ type: 'closed' });
          break;
        case 'exit':
          socket?.close();
          process.disconnect();
          break;
      }
    })();
  });
  send({ type: 'up' });
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'import') await importMode(arg!);
else if (mode === 'agent') await agentMode(arg === 'controlled' ? 'controlled' : 'controlling');
else if (mode === 'floor') await floorMode();
else throw new Error(`cold-peer: unknown mode ${String(mode)}`);
