/**
 * The chaos suite's peers: child processes running `peer-process.ts`, bundled with the TypeScript sources by
 * rolldown into a temp dir (Node 20 cannot run .ts, and `dist` may be stale), so each child runs the code under
 * test as a user's process would. Every child is killed by PID in `stop()` (also when it is SIGSTOPped), and the
 * bundle dir is removed; call `stopAll()` from `afterAll`.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';
import type { Candidate } from '../../src/candidates/candidate.js';
import type { IceAgentOptions } from '../../src/node/ice-agent-options.js';
import type { AgentState, IceParameters } from '../../src/checklist/types.js';

/** What a peer reports (see `peer-process.ts`). */
export interface PeerReport {
  readonly state: AgentState;
  readonly role: string;
  readonly selected: { readonly local: string; readonly remote: string; readonly localType: string; readonly remoteType: string } | undefined;
  readonly pairs: readonly { readonly id: string; readonly remote: string; readonly state: string; readonly nominated: boolean }[];
  readonly dropped: Readonly<Record<string, number>>;
  readonly checksSent: number;
  readonly rx: { readonly count: number; readonly maxGapMs: number; readonly lastSeq: number; readonly outOfOrder: number; readonly sinceLastMs: number };
  readonly tx: { readonly sent: number; readonly refused: number };
  readonly resources: Readonly<Record<string, number>>;
}

export interface PeerEvent {
  readonly name: 'state' | 'selected';
  /** Parent's clock when the event arrived. */
  readonly at: number;
  readonly state?: AgentState;
  readonly selected?: PeerReport['selected'];
}

export interface Gathered {
  readonly params: IceParameters;
  readonly candidates: readonly Candidate[];
}

let bundleDir: string | undefined;
let bundling: Promise<string> | undefined;
const live = new Set<ChaosPeer>();

/** Bundles `peer-process.ts` once per test file. */
function bundle(): Promise<string> {
  bundling ??= (async () => {
    bundleDir = mkdtempSync(join(tmpdir(), 'icewire-chaos-'));
    await build({
      input: { peer: fileURLToPath(new URL('./peer-process.ts', import.meta.url)) },
      platform: 'node',
      logLevel: 'warn',
      resolve: { extensionAlias: { '.js': ['.ts', '.js'] } },
      external: [/^node:/],
      output: { dir: bundleDir, format: 'esm', entryFileNames: '[name].mjs' },
    });
    return join(bundleDir, 'peer.mjs');
  })();
  return bundling;
}

/** One peer process. */
export class ChaosPeer {
  readonly proc: ChildProcess;
  readonly events: PeerEvent[] = [];
  readonly #replies = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #seq = 0;
  readonly #up: Promise<void>;
  #listeners: (() => void)[] = [];

  private constructor(script: string, readonly name: string) {
    this.proc = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('error', () => undefined);
    let up: () => void = () => undefined;
    this.#up = new Promise((r) => (up = r));
    this.proc.on('message', (m: { type: string; id?: number; ok?: boolean; result?: unknown; error?: string; name?: string }) => {
      if (m.type === 'up') up();
      else if (m.type === 'reply') {
        const w = this.#replies.get(m.id!);
        if (!w) return;
        this.#replies.delete(m.id!);
        clearTimeout(w.timer);
        if (m.ok) w.resolve(m.result);
        else w.reject(new Error(`${this.name}: ${m.error}`));
      } else if (m.type === 'event') {
        this.events.push({ ...(m as unknown as PeerEvent), at: Date.now() });
        for (const f of this.#listeners) f();
      }
    });
    this.proc.once('exit', () => {
      for (const w of this.#replies.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`${this.name}: process exited`));
      }
      this.#replies.clear();
    });
  }

  /** Starts a peer process with an `IceAgent` on 127.0.0.1 only, plus `options` (plain data: they cross IPC). */
  static async start(name: string, options: IceAgentOptions): Promise<ChaosPeer> {
    const p = new ChaosPeer(await bundle(), name);
    live.add(p);
    await Promise.race([p.#up, new Promise((_, rej) => setTimeout(() => rej(new Error(`${name}: no start within 10 s`)), 10_000).unref())]);
    await p.request({ cmd: 'init', options });
    return p;
  }

  /** Sends a request and waits for its reply (bounded). */
  request<T = unknown>(body: object, ms = 10_000): Promise<T> {
    const id = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#replies.delete(id);
        reject(new Error(`${this.name}: no reply to ${JSON.stringify(body).slice(0, 60)} within ${ms} ms`));
      }, ms);
      this.#replies.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ ...body, id });
    });
  }

  gather(): Promise<Gathered> {
    return this.request<Gathered>({ cmd: 'gather' });
  }

  remote(g: Gathered, end = true): Promise<void> {
    return this.request({ cmd: 'remote', params: g.params, candidates: g.candidates, end });
  }

  report(): Promise<PeerReport> {
    return this.request<PeerReport>({ cmd: 'report' });
  }

  /** Resolves once `pred` holds for the newest event (or at once if it holds now); rejects after `ms`. */
  waitFor(pred: (e: PeerEvent, all: readonly PeerEvent[]) => boolean, ms: number, what: string): Promise<PeerEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const e = this.events.at(-1);
        if (e && pred(e, this.events)) {
          done();
          resolve(e);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: ${what} not within ${ms} ms (last events: ${JSON.stringify(this.events.slice(-4))})`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((f) => f !== listener);
      };
      const listener = (): void => void check();
      this.#listeners.push(listener);
      check();
    });
  }

  /** Resolves once the last reported state is one of `states`. */
  waitState(states: readonly AgentState[], ms: number): Promise<PeerEvent> {
    return this.waitFor(() => this.state !== undefined && states.includes(this.state), ms, states.join('/'));
  }

  /** The agent state as last reported by an event. */
  get state(): AgentState | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) if (this.events[i]!.name === 'state') return this.events[i]!.state;
    return undefined;
  }

  /** Closes the agent (bounded), then ends the process; SIGKILL if it does not go. */
  async stop(): Promise<void> {
    live.delete(this);
    const p = this.proc;
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      p.kill('SIGCONT'); // a stopped child cannot close
      if (p.connected) await this.request({ cmd: 'close' }, 5_000).catch(() => undefined);
      if (p.connected) p.disconnect();
    } catch {
      // already gone
    }
    const t = setTimeout(() => p.kill('SIGKILL'), 3_000);
    await gone;
    clearTimeout(t);
  }
}

/** Two peers gathered, signalled to each other, and connected (both `connected` or `completed`). */
export async function connectedPair(a: ChaosPeer, b: ChaosPeer, ms = 10_000): Promise<[Gathered, Gathered]> {
  const [ga, gb] = await Promise.all([a.gather(), b.gather()]);
  await Promise.all([a.remote(gb), b.remote(ga)]);
  const up = (e: PeerEvent) => e.name === 'state' && (e.state === 'connected' || e.state === 'completed');
  await Promise.all([a.waitFor(up, ms, 'connected'), b.waitFor(up, ms, 'connected')]);
  return [ga, gb];
}

/** Stops every peer still running and removes the bundle (call from `afterAll`). */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...live].map((p) => p.stop()));
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  bundleDir = undefined;
  bundling = undefined;
}

// A crashed worker must not leave children behind.
process.once('exit', () => {
  for (const p of live) {
    try {
      p.proc.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
