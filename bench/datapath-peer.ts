/**
 * Child process of the two-process data-path bench (`bench/datapath-processes.bench.ts`):
 * `node dist/bench/datapath-peer.js <ice|raw> <a|b>`. Side `a` sends 100-byte datagrams and counts echoes, side `b`
 * echoes whatever arrives; `ice` goes through `IceAgent.send` and `data` events on the selected pair, `raw` through
 * a plain `node:dgram` socket. Commands come over IPC, one at a time:
 *
 * - `start` → binds (and gathers), replies `ready` with what the peer needs (`params`, `candidates`, `port`);
 * - `remote` → takes the peer's, replies `connected` once data can flow (ICE: a selected pair and `completed`);
 * - `measure` → notes `process.cpuUsage()`, replies `measuring`; `stop` → replies `cpu` (ms since `measure`);
 * - `round` (side `a`) → echoes `n` datagrams with at most `window` in flight, replies `done`;
 * - `exit`.
 * @module
 */
import { createSocket, type Socket } from 'node:dgram';
import type { Candidate } from '../src/candidates/candidate.js';
import type { IceParameters } from '../src/checklist/types.js';
import { IceAgent } from '../src/node/ice-agent.js';

type Command =
  | { readonly type: 'start' }
  | { readonly type: 'remote'; readonly params?: IceParameters; readonly candidates?: readonly Candidate[]; readonly port?: number }
  | { readonly type: 'measure' }
  | { readonly type: 'stop' }
  | { readonly type: 'round'; readonly n: number; readonly window: number }
  | { readonly type: 'exit' };

/** How one side moves datagrams. */
interface Link {
  ready(): Promise<object>;
  connect(cmd: Extract<Command, { type: 'remote' }>): Promise<void>;
  send(b: Buffer): void;
  onData(f: (b: Buffer) => void): void;
  close(): Promise<void>;
}

function rawLink(): Link {
  const socket: Socket = createSocket('udp4');
  let peerPort = 0;
  return {
    async ready() {
      await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
      return { port: socket.address().port };
    },
    async connect(cmd) {
      peerPort = cmd.port!;
    },
    send(b) {
      socket.send(b, peerPort, '127.0.0.1');
    },
    onData(f) {
      socket.on('message', f);
    },
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

function iceLink(role: 'controlling' | 'controlled'): Link {
  const agent = new IceAgent({ includeLoopback: true, addressFilter: (a) => a === '127.0.0.1', role });
  return {
    async ready() {
      await agent.gather();
      return { params: agent.getLocalParameters(), candidates: agent.getLocalCandidates() };
    },
    async connect(cmd) {
      const done = new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('datapath-peer: not completed within 10 s')), 10_000);
        const check = (): void => {
          if (agent.state !== 'completed' || agent.getSelectedCandidatePair() === undefined) return;
          clearTimeout(t);
          agent.off('statechange', check);
          agent.off('selectedcandidatepairchange', check);
          resolve();
        };
        agent.on('statechange', check);
        agent.on('selectedcandidatepairchange', check);
      });
      agent.setRemoteParameters(cmd.params!);
      for (const c of cmd.candidates!) agent.addRemoteCandidate(c);
      agent.endOfRemoteCandidates();
      await done;
    },
    send(b) {
      if (!agent.send(b)) throw new Error('datapath-peer: send refused');
    },
    onData(f) {
      agent.on('data', f);
    },
    close: () => agent.close(),
  };
}

const [mode, side] = process.argv.slice(2);
const link = mode === 'ice' ? iceLink(side === 'a' ? 'controlling' : 'controlled') : rawLink();
let cpu0 = process.cpuUsage();
/** Side `a`: called for each echo during a round. */
let onEcho: () => void = () => undefined;
if (side === 'b') link.onData((d) => link.send(d));
else link.onData(() => onEcho());

function round(n: number, window: number): Promise<void> {
  const payload = Buffer.alloc(100, 0x5a);
  payload[0] = 0x80; // RTP-like (RFC 7983), never STUN
  let sent = 0;
  let echoed = 0;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`datapath-peer: only ${echoed}/${n} echoes`)), 60_000);
    onEcho = () => {
      echoed++;
      if (echoed === n) {
        clearTimeout(t);
        resolve();
      } else if (sent < n) {
        sent++;
        link.send(payload);
      }
    };
    for (; sent < Math.min(window, n); sent++) link.send(payload);
  });
}

process.on('message', (cmd: Command) => {
  void (async () => {
    switch (cmd.type) {
      case 'start':
        process.send!({ type: 'ready', ...(await link.ready()) });
        break;
      case 'remote':
        await link.connect(cmd);
        process.send!({ type: 'connected' });
        break;
      case 'measure':
        cpu0 = process.cpuUsage();
        process.send!({ type: 'measuring' });
        break;
      case 'stop': {
        const d = process.cpuUsage(cpu0);
        process.send!({ type: 'cpu', ms: (d.user + d.system) / 1000 });
        break;
      }
      case 'round':
        await round(cmd.n, cmd.window);
        process.send!({ type: 'done' });
        break;
      case 'exit':
        await link.close();
        process.disconnect();
        break;
    }
  })().catch((error: unknown) => {
    process.stderr.write(`datapath-peer: ${String(error)}\n`);
    process.exit(1);
  });
});
process.send!({ type: 'up' });
