/**
 * A bench child process spoken to over IPC: typed waits on its next message, and an exit that cannot hang.
 * Shared by the benches that measure fresh processes (`cold`) and two-process data paths (`datapath-processes`).
 * @module
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';

/** A message from a child: `type` plus whatever it carries. */
export interface ChildMessage {
  readonly type: string;
  readonly [k: string]: unknown;
}

/** True when Linux `taskset` is usable (to pin children to one CPU). */
export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A forked child and a queue of its messages. */
export class IpcChild {
  readonly proc: ChildProcess;
  readonly #queue: ChildMessage[] = [];
  readonly #waiters: ((m: ChildMessage) => void)[] = [];

  /** Forks `script` with `args`; with `cpu`, the child runs pinned to that CPU (`taskset -c`). */
  constructor(script: string, args: readonly string[], cpu?: number) {
    const options = { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc')[] };
    this.proc =
      cpu === undefined
        ? fork(script, args, options)
        : fork(script, args, { ...options, execPath: 'taskset', execArgv: ['-c', String(cpu), process.execPath] });
    // A child that disconnected itself may race a last send: nothing to report.
    this.proc.on('error', () => undefined);
    this.proc.on('message', (m: ChildMessage) => {
      const w = this.#waiters.shift();
      if (w) w(m);
      else this.#queue.push(m);
    });
  }

  send(m: object): void {
    this.proc.send(m);
  }

  /** The child's next message, which must be of `type`. */
  next(type: string, ms = 10_000): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`child: no '${type}' within ${ms} ms`)), ms);
      const take = (m: ChildMessage): void => {
        clearTimeout(t);
        if (m.type !== type) reject(new Error(`child: expected '${type}', got '${m.type}'`));
        else resolve(m);
      };
      const queued = this.#queue.shift();
      if (queued) take(queued);
      else this.#waiters.push(take);
    });
  }

  /** Sends `exit` (if still connected) and waits for the process to end, killing it after 3 s. */
  async exit(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    if (this.proc.connected) this.proc.send({ type: 'exit' }, () => undefined);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }
}
