/**
 * Test helper: runs `libnice_peer.py` (a libnice ICE agent behind a line-based JSON protocol) as a child process and
 * exposes promise-based waits with timeouts. Every peer is killed on `close()`, and any peer still alive when the
 * test process exits is SIGKILLed, so no libnice process outlives the test run.
 *
 * libnice and PyGObject live in the system Python: always spawn `/usr/bin/python3`, never the `python3` on PATH
 * (which may be a pyenv build without `gi`).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { IceRole } from '../../src/types.js';

/** The interpreter that has `gi` and the Nice typelib (Debian `python3-gi`, `gir1.2-nice-0.1`). */
export const SYSTEM_PYTHON = '/usr/bin/python3';
/** Absolute path of the peer script. */
export const LIBNICE_PEER_SCRIPT = fileURLToPath(new URL('./libnice_peer.py', import.meta.url));

/** libnice component states as the script reports them. */
export type LibniceState = 'gathering' | 'connecting' | 'connected' | 'ready' | 'failed' | 'disconnected';

/** ICE parameters exchanged with the peer. Candidates are RFC 8839 `candidate:` strings without `a=`. */
export interface LibniceParameters {
  readonly ufrag: string;
  readonly pwd: string;
  readonly candidates: readonly string[];
}

/** One side of the selected pair. */
export interface LibniceCandidateInfo {
  readonly address: string;
  readonly port: number;
  /** `host`, `srflx`, `prflx` or `relay`. */
  readonly type: string;
  readonly candidate: string;
}

/** The pair libnice selected. */
export interface LibniceSelected {
  readonly local: LibniceCandidateInfo;
  readonly remote: LibniceCandidateInfo;
}

/** Application data the peer received (and, unless started with `echo: false`, echoed back). */
export interface LibniceData {
  readonly data: Uint8Array;
  /** Bytes echoed back; -1 when echo is off or the send failed. */
  readonly echoed: number;
}

/** Every line the script prints. */
export type LibniceMessage =
  | ({ readonly type: 'local' } & LibniceParameters)
  | { readonly type: 'state'; readonly state: LibniceState }
  | ({ readonly type: 'selected' } & LibniceSelected)
  | { readonly type: 'data'; readonly len: number; readonly data: string; readonly echoed: number }
  | { readonly type: 'sent'; readonly len: number }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'exit'; readonly reason: 'eof' | 'quit' | 'timeout' | 'signal' }
  | { readonly type: 'raw'; readonly line: string };

/** Options of {@link LibnicePeer.start}. */
export interface LibnicePeerOptions {
  readonly role: IceRole;
  /** Local address libnice binds (loopback only in tests). Default `127.0.0.1`. */
  readonly address?: string;
  /** Hard timeout of the script, in seconds. Default 30. */
  readonly hardTimeoutSec?: number;
  /** libnice nomination mode when controlling. Default `'regular'` (RFC 8445 has no aggressive nomination). */
  readonly nomination?: 'regular' | 'aggressive';
  /** Enables libnice's RFC 7675 consent freshness. Default false. */
  readonly consentFreshness?: boolean;
  /** Echo received data back to the sender. Default true. */
  readonly echo?: boolean;
  /** libnice debug logging to stderr (see {@link LibnicePeer.stderr}). Default false. */
  readonly debug?: boolean;
  /** ICE-TCP host candidates only (libnice `ice-tcp` on, `ice-udp` off). Default false. */
  readonly tcpOnly?: boolean;
  /** Default timeout of the waits, in ms. Default 10 000. */
  readonly waitMs?: number;
}

/** Whether libnice can run here; `reason` says what is missing. */
export type LibniceAvailability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

let cachedAvailability: LibniceAvailability | undefined;

/** Checks (once per process) that the system Python can load the Nice typelib and the libnice shared library. */
export function checkLibnice(): LibniceAvailability {
  if (cachedAvailability !== undefined) return cachedAvailability;
  const probe = [
    'import ctypes, gi',
    "gi.require_version('Nice', '0.1')",
    'from gi.repository import Nice',
    "ctypes.CDLL('libnice.so.10')",
  ].join('; ');
  const r = spawnSync(SYSTEM_PYTHON, ['-c', probe], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined) {
    cachedAvailability = { ok: false, reason: `cannot run ${SYSTEM_PYTHON}: ${r.error.message}` };
  } else if (r.status !== 0) {
    const tail = (r.stderr ?? '').trim().split('\n').slice(-1)[0] ?? '';
    cachedAvailability = {
      ok: false,
      reason: `${SYSTEM_PYTHON} cannot load libnice (apt-get install gir1.2-nice-0.1 python3-gi): ${tail}`,
    };
  } else {
    cachedAvailability = { ok: true };
  }
  return cachedAvailability;
}

const live = new Set<ChildProcessWithoutNullStreams>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last line of defence: a test that forgot close() (or crashed) must not leave libnice running.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/** Rejected when the process died, timed out, or reported something that makes the wait pointless. */
export class LibnicePeerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LibnicePeerError';
  }
}

interface Waiter {
  readonly check: () => boolean;
  readonly fail: (error: Error) => void;
}

/** A running libnice peer. Create with {@link LibnicePeer.start}; always {@link LibnicePeer.close} it. */
export class LibnicePeer {
  /** Every message printed so far, in order. */
  readonly messages: LibniceMessage[] = [];
  readonly role: IceRole;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waitMs: number;
  readonly #waiters = new Set<Waiter>();
  readonly #exit: Promise<number | null>;
  #stdout = '';
  #stderr = '';
  #exitCode: number | null | undefined = undefined;
  #signal: NodeJS.Signals | null = null;
  #dataCursor = 0;
  #sentCursor = 0;
  #closing: Promise<void> | undefined;

  private constructor(options: LibnicePeerOptions) {
    this.role = options.role;
    this.#waitMs = options.waitMs ?? 10_000;
    const args = [
      LIBNICE_PEER_SCRIPT,
      options.role,
      '--address',
      options.address ?? '127.0.0.1',
      '--timeout',
      String(options.hardTimeoutSec ?? 30),
      '--nomination',
      options.nomination ?? 'regular',
    ];
    if (options.consentFreshness === true) args.push('--consent-freshness');
    if (options.echo === false) args.push('--no-echo');
    if (options.debug === true) args.push('--debug');
    if (options.tcpOnly === true) args.push('--tcp-only');
    installExitHook();
    // PYTHONUNBUFFERED: each JSON line must reach us when printed, not when a buffer fills.
    const child = spawn(SYSTEM_PYTHON, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    this.#child = child;
    live.add(child);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.#onStdout(chunk));
    child.stderr.on('data', (chunk: string) => {
      this.#stderr += chunk;
      if (this.#stderr.length > 200_000) this.#stderr = this.#stderr.slice(-100_000);
    });
    child.stdin.on('error', () => {}); // EPIPE after the peer exited: reported through the exit instead
    this.#exit = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        live.delete(child);
        this.#exitCode = code;
        this.#signal = signal;
        for (const w of [...this.#waiters]) {
          if (!w.check()) w.fail(new LibnicePeerError(`libnice peer exited (${this.#describeExit()}) ${this.#tail()}`));
        }
        resolve(code);
      };
      child.once('exit', done);
      child.once('error', (error) => {
        this.#stderr += `\nspawn error: ${error.message}`;
        done(null, null);
      });
    });
  }

  /** Spawns a peer. It starts gathering at once; {@link local} resolves when gathering is done. */
  static start(options: LibnicePeerOptions): LibnicePeer {
    return new LibnicePeer(options);
  }

  /** Everything the peer wrote to stderr (libnice debug output with `debug: true`, Python tracebacks). */
  get stderr(): string {
    return this.#stderr;
  }

  /** The OS process id (for tests that check the process is gone). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Exit code once exited (null when killed by a signal); undefined while running. */
  get exitCode(): number | null | undefined {
    return this.#exitCode;
  }

  /** Every state the peer reported, in order. */
  get states(): LibniceState[] {
    return this.messages.flatMap((m) => (m.type === 'state' ? [m.state] : []));
  }

  /** The local ufrag, pwd and candidates (gathering done). */
  local(timeoutMs = this.#waitMs): Promise<LibniceParameters> {
    return this.#waitFor('local parameters', timeoutMs, () => {
      const m = this.messages.find((x) => x.type === 'local');
      return m === undefined ? undefined : { ufrag: m.ufrag, pwd: m.pwd, candidates: m.candidates };
    });
  }

  /** Gives the peer the remote ufrag/pwd and candidates (may be called again to add candidates). */
  setRemote(params: LibniceParameters): void {
    this.#write({ type: 'remote', ufrag: params.ufrag, pwd: params.pwd, candidates: [...params.candidates] });
  }

  /**
   * Resolves once the peer has reported `state` (now or earlier). Rejects early when it reports `'failed'` while
   * waiting for another state, on timeout, or when the process exits.
   */
  waitState(state: LibniceState, timeoutMs = this.#waitMs): Promise<void> {
    return this.#waitFor(`state ${state}`, timeoutMs, () => {
      const states = this.states;
      if (states.includes(state)) return true;
      if (state !== 'failed' && states.includes('failed')) {
        throw new LibnicePeerError(`libnice peer failed while waiting for ${state} ${this.#tail()}`);
      }
      return undefined;
    }).then(() => undefined);
  }

  /** The latest selected pair, once the peer has selected one. */
  waitSelected(timeoutMs = this.#waitMs): Promise<LibniceSelected> {
    return this.#waitFor('selected pair', timeoutMs, () => {
      for (let i = this.messages.length - 1; i >= 0; i--) {
        const m = this.messages[i]!;
        if (m.type === 'selected') return { local: m.local, remote: m.remote };
      }
      return undefined;
    });
  }

  /**
   * Sends `data` on the component (over the selected pair) and resolves with the byte count libnice sent. Resolves
   * -1 when libnice had no selected pair yet (it then sends nothing).
   */
  send(data: Uint8Array, timeoutMs = this.#waitMs): Promise<number> {
    this.#write({ type: 'send', data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64') });
    return this.#waitFor('send result', timeoutMs, () => {
      let seen = 0;
      for (const m of this.messages) {
        if (m.type !== 'sent') continue;
        if (seen++ === this.#sentCursor) {
          this.#sentCursor++;
          return m.len;
        }
      }
      return undefined;
    });
  }

  /** The next application datagram the peer received (each is returned once, in arrival order). */
  nextData(timeoutMs = this.#waitMs): Promise<LibniceData> {
    return this.#waitFor('data', timeoutMs, () => {
      let seen = 0;
      for (const m of this.messages) {
        if (m.type !== 'data') continue;
        if (seen++ === this.#dataCursor) {
          this.#dataCursor++;
          return { data: new Uint8Array(Buffer.from(m.data, 'base64')), echoed: m.echoed };
        }
      }
      return undefined;
    });
  }

  /** Resolves with the exit code once the process is gone (null when killed by a signal). */
  waitExit(timeoutMs = this.#waitMs): Promise<number | null> {
    return this.#waitFor('exit', timeoutMs, () => (this.#exitCode === undefined ? undefined : { code: this.#exitCode }))
      .then((r) => r.code);
  }

  /**
   * Asks the peer to quit, then kills it (SIGKILL) if it has not exited within `graceMs`. Resolves once the process
   * is gone. Idempotent.
   */
  close(graceMs = 2000): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#exitCode === undefined) {
        this.#write({ type: 'quit' });
        this.#child.stdin.end();
        const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
        await this.#exit;
        clearTimeout(timer);
      }
      for (const w of [...this.#waiters]) w.fail(new LibnicePeerError('libnice peer closed'));
    })();
    return this.#closing;
  }

  #write(obj: unknown): void {
    if (this.#exitCode !== undefined || this.#child.stdin.destroyed || this.#child.stdin.writableEnded) {
      throw new LibnicePeerError(`libnice peer is not running (${this.#describeExit()}) ${this.#tail()}`);
    }
    this.#child.stdin.write(`${JSON.stringify(obj)}\n`);
  }

  #onStdout(chunk: string): void {
    this.#stdout += chunk;
    let nl: number;
    while ((nl = this.#stdout.indexOf('\n')) >= 0) {
      const line = this.#stdout.slice(0, nl).trim();
      this.#stdout = this.#stdout.slice(nl + 1);
      if (line === '') continue;
      let msg: LibniceMessage;
      try {
        msg = JSON.parse(line) as LibniceMessage;
      } catch {
        msg = { type: 'raw', line };
      }
      this.messages.push(msg);
    }
    for (const w of [...this.#waiters]) w.check();
  }

  /**
   * Resolves with the first non-undefined result of `probe`, which is re-run on each new message. A probe that
   * throws rejects the wait.
   */
  #waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        check: () => {
          let r: T | undefined;
          try {
            r = probe();
          } catch (error) {
            waiter.fail(error as Error);
            return true;
          }
          if (r === undefined) return false;
          this.#waiters.delete(waiter);
          clearTimeout(timer);
          resolve(r);
          return true;
        },
        fail: (error) => {
          this.#waiters.delete(waiter);
          clearTimeout(timer);
          reject(error);
        },
      };
      if (waiter.check()) return;
      if (this.#exitCode !== undefined) {
        waiter.fail(new LibnicePeerError(`libnice peer exited (${this.#describeExit()}) before ${what} ${this.#tail()}`));
        return;
      }
      this.#waiters.add(waiter);
      timer = setTimeout(
        () => waiter.fail(new LibnicePeerError(`timed out after ${timeoutMs} ms waiting for ${what} ${this.#tail()}`)),
        timeoutMs,
      );
    });
  }

  #describeExit(): string {
    if (this.#exitCode === undefined) return 'running';
    return this.#signal !== null ? `signal ${this.#signal}` : `code ${this.#exitCode}`;
  }

  /** Recent output for error messages, so a failing interop test says what libnice did. */
  #tail(): string {
    const msgs = this.messages.slice(-8).map((m) => JSON.stringify(m)).join('\n  ');
    const err = this.#stderr.trim().split('\n').slice(-8).join('\n  ');
    return `\n last messages:\n  ${msgs || '(none)'}${err ? `\n stderr:\n  ${err}` : ''}`;
  }
}

/** Closes every peer given (ignoring failures), for `afterEach`. */
export async function closePeers(peers: Iterable<LibnicePeer>): Promise<void> {
  await Promise.allSettled([...peers].map((p) => p.close()));
}
