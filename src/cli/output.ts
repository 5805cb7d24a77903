/**
 * What every `icewire` subcommand shares: exit codes, usage errors, colour (only on a TTY, never with NO_COLOR)
 * and a progress line on a TTY's stderr.
 * @module
 */
import { IcewireError } from '../errors.js';

/** Exit codes of the `icewire` command (documented in README.md). */
export const ExitCode = {
  /** The command did what was asked. */
  Ok: 0,
  /** What was asked failed: a server gave no candidate or did not answer, discovery could not conclude. */
  Failed: 1,
  /** Bad command line: unknown command or option, missing or malformed value. */
  Usage: 2,
  /** It could not run here: no usable local address, a socket would not bind. */
  Local: 3,
} as const;

/** A bad command line (exit code 2). */
export class UsageError extends IcewireError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

/** The process streams and environment a command writes to (a seam for the tests and for embedding). */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { readonly isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

/** Colour only for a terminal, and never when NO_COLOR is set to anything non-empty (no-color.org) or TERM=dumb. */
export function useColor(stream: CliIo['stdout'], env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env['NO_COLOR'] && env['TERM'] !== 'dumb';
}

/** ANSI styles that are no-ops when colour is off. */
export function styles(enabled: boolean) {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39), cyan: wrap(36, 39) };
}

/** A one-line spinner on stderr while waiting; inert unless stderr is a TTY. */
export class Progress {
  readonly #stream: CliIo['stderr'];
  readonly #active: boolean;
  readonly #start = performance.now();
  #text = '';
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(io: CliIo) {
    this.#stream = io.stderr;
    this.#active = io.stderr.isTTY === true;
    if (this.#active) {
      this.#timer = setInterval(() => this.#draw(), 100);
      this.#timer.unref();
    }
  }

  /** Replaces the text after the spinner. */
  update(text: string): void {
    this.#text = text;
    this.#draw();
  }

  /** Clears the line and stops. */
  stop(): void {
    clearInterval(this.#timer);
    if (this.#active) this.#stream.write('\r\x1b[2K');
  }

  #draw(): void {
    if (!this.#active) return;
    const frames = '|/-\\';
    const secs = ((performance.now() - this.#start) / 1000).toFixed(1);
    this.#stream.write(`\r\x1b[2K${frames[this.#frame++ % frames.length]} ${this.#text} ${secs} s`);
  }
}

/** `host:port`, with brackets around IPv6. */
export function showAddress(a: { readonly address: string; readonly port: number }): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** Parses a decimal integer option in [min, max], or throws a UsageError naming the option. */
export function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in ${min}-${max}, got "${value}"`);
  return n;
}
