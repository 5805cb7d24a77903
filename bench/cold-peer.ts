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

/** Wall-clock time in ms since the epoch, sub-millisecond, comparable across processes of one host. */
function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** What the measured window of one connection found. */
interface Times {
  /** Wall clock (ms since the epoch, sub-ms) when the peer's parameters were handed in, a pair was first selected, and the agent completed. */
  paramsAt?: number;
  selectedAt?: number;
  completedAt?: number;
  selectedCpuMs?: number;
  connectedCpuMs?: number;
  /** `getSelectedCandidatePair()` returned a pair when `connected` fired. */
  selectedAtConnected?: boolean;
}

/** What one kind of peer does on each command; {@link serve} runs the protocol around it. */
interface Side {
  /** Binds (and gathers); the reply for the parent. */
  start(): Promise<object>;
  /** Takes the peer's parameters; fills `times` from `cpu0` and calls `changed` as it goes. */
  remote(cmd: Extract<Command, { type: 'remote' }>, cpu0: NodeJS.CpuUsage, times: Times, changed: () => void): void;
  close(): Promise<void>;
}

function serve(side: Side): void {
  let times: Times = {};
  let reportWanted = false;
  const changed = (): void => {
    if (reportWanted && times.selectedCpuMs !== undefined && times.connectedCpuMs !== undefined) {
      reportWanted = false;
      send({ type: 'times', ...times });
    }
  };
  process.on('message', (cmd: Command) => {
    void (async () => {
      switch (cmd.type) {
        case 'start':
          send({ type: 'ready', ...(await side.start()) });
          break;
        case 'remote':
          times = {};
          side.remote(cmd, process.cpuUsage(), times, changed);
          break;
        case 'report':
          reportWanted = true;
          changed();
          break;
        case 'close':
          await side.close();
          send({ type: 'closed' });
          break;
        case 'exit':
          await side.close();
          process.disconnect();
          break;
      }
    })();
  });
  send({ type: 'up' });
}

async function agentSide(role: 'controlling' | 'controlled'): Promise<Side> {
  // The published entry (the bundle package.json exports), as a user's process loads it.
  const { IceAgent } = (await import(new URL('../pkg/index.js', import.meta.url).href)) as typeof import('../src/index.js');
  let agent: InstanceType<typeof IceAgent> | undefined;
  return {
    async start() {
      agent = new IceAgent({ includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1', role });
      await agent.gather();
      return { params: agent.getLocalParameters(), candidates: agent.getLocalCandidates() };
    },
    remote(cmd, cpu0, times, changed) {
      const a = agent!;
      a.once('selectedcandidatepairchange', () => {
        times.selectedCpuMs = cpuMs(cpu0);
        times.selectedAt = epochNow();
        changed();
      });
      const onState = (s: string): void => {
        if (s === 'completed') times.completedAt = epochNow();
        if ((s !== 'connected' && s !== 'completed') || times.connectedCpuMs !== undefined) return;
        times.connectedCpuMs = cpuMs(cpu0);
        times.selectedAtConnected = a.getSelectedCandidatePair() !== undefined;
        changed();
      };
      a.on('statechange', onState);
      times.paramsAt = epochNow();
      a.setRemoteParameters(cmd.params);
      for (const c of cmd.candidates) a.addRemoteCandidate(c);
      a.endOfRemoteCandidates();
    },
    async close() {
      await agent?.close();
      agent = undefined;
    },
  };
}

/** Both sides send a request and answer the other's: the role does not matter here. */
async function floorSide(): Promise<Side> {
  const { createSocket } = await import('node:dgram');
  let socket: Socket | undefined;
  let window: { cpu0: NodeJS.CpuUsage; times: Times; changed: () => void } | undefined;
  return {
    async start() {
      const s = createSocket('udp4');
      const response = Buffer.alloc(100, 2);
      let answered = false;
      let gotAnswer = false;
      // Listening from now: the peer's request may arrive before this side's `remote` command.
      s.on('message', (m, r) => {
        if (m[0] === 1) {
          s.send(response, r.port, r.address);
          answered = true;
        } else gotAnswer = true;
        if (answered && gotAnswer && window !== undefined && window.times.connectedCpuMs === undefined) {
          window.times.connectedCpuMs = window.times.selectedCpuMs = cpuMs(window.cpu0);
          window.changed();
        }
      });
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      socket = s;
      return { params: { ufrag: 'xxxx', pwd: 'x'.repeat(22) }, candidates: [], port: s.address().port };
    },
    remote(cmd, cpu0, times, changed) {
      window = { cpu0, times, changed };
      socket!.send(Buffer.alloc(100, 1), cmd.port!, '127.0.0.1');
    },
    async close() {
      await new Promise<void>((r) => (socket ? socket.close(() => r()) : r()));
      socket = undefined;
      window = undefined;
    },
  };
}

const [mode, arg] = process.argv.slice(2);
if (mode === 'import') await importMode(arg!);
else if (mode === 'agent') serve(await agentSide(arg === 'controlled' ? 'controlled' : 'controlling'));
else if (mode === 'floor') serve(await floorSide());
else throw new Error(`cold-peer: unknown mode ${String(mode)}`);
