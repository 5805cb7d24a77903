/**
 * Test doubles for the driver tests: a scriptable sans-IO machine and a timer host that counts live host timers.
 */
import type { SansIoMachine } from '../../src/machine.js';
import type { Datagram, TransportAddress } from '../../src/types.js';
import { nodeTimerHost, type TimerHost } from '../../src/node/driver.js';

/** Events of {@link FakeMachine}. */
export type FakeEvent =
  | { readonly type: 'timeout'; readonly now: number; readonly deadline: number }
  | { readonly type: 'received'; readonly data: string }
  | { readonly type: 'note'; readonly text: string };

const LOCAL: TransportAddress = { address: '127.0.0.1', port: 1 };
const REMOTE: TransportAddress = { address: '127.0.0.1', port: 2 };

/** Builds a datagram carrying `text`. */
export function dg(text: string, local: TransportAddress = LOCAL, remote: TransportAddress = REMOTE): Datagram {
  return { local, remote, data: new TextEncoder().encode(text) };
}

/** Decodes a datagram's text. */
export function text(d: Datagram): string {
  return new TextDecoder().decode(d.data);
}

/**
 * A machine whose deadlines, accepted datagrams and outputs are scripted by the test. It records every call and
 * flags a re-entrancy violation when a method is called while one of its poll loops is inside a user callback.
 */
export class FakeMachine implements SansIoMachine<FakeEvent> {
  readonly name: string;
  /** Pending deadlines (sorted ascending); `pollTimeout` returns the first. */
  deadlines: number[] = [];
  /** `now` of each handleTimeout call. */
  readonly timeoutCalls: number[] = [];
  /** Datagrams taken by handleReceive. */
  readonly received: Datagram[] = [];
  /** Which datagrams to take (default: text starts with the machine name). */
  accepts: (d: Datagram) => boolean;
  /** When set, each taken datagram queues this reply (or nothing when it returns undefined). */
  reply: ((d: Datagram) => Datagram | undefined) | undefined;
  /** Set by tests while a user callback runs; a machine call during it means the driver recursed. */
  inCallback = false;
  violations = 0;
  pollTransmitCalls = 0;
  readonly #tx: Datagram[] = [];
  readonly #ev: FakeEvent[] = [];

  constructor(name: string) {
    this.name = name;
    this.accepts = (d) => text(d).startsWith(name);
  }

  #check(): void {
    if (this.inCallback) this.violations++;
  }

  handleReceive(_now: number, datagram: Datagram): boolean {
    this.#check();
    if (!this.accepts(datagram)) return false;
    this.received.push(datagram);
    this.#ev.push({ type: 'received', data: text(datagram) });
    const r = this.reply?.(datagram);
    if (r !== undefined) this.#tx.push(r);
    return true;
  }

  handleTimeout(now: number): void {
    this.#check();
    this.timeoutCalls.push(now);
    while (this.deadlines.length > 0 && this.deadlines[0]! <= now) {
      const deadline = this.deadlines.shift()!;
      this.#ev.push({ type: 'timeout', now, deadline });
    }
  }

  pollTransmit(): Datagram | undefined {
    this.#check();
    this.pollTransmitCalls++;
    return this.#tx.shift();
  }

  pollEvent(): FakeEvent | undefined {
    this.#check();
    return this.#ev.shift();
  }

  pollTimeout(): number | undefined {
    this.#check();
    return this.deadlines[0];
  }

  /** A command: queues a transmit and an event (the owner must kick the driver, or call it from a callback). */
  command(note: string): void {
    this.#tx.push(dg(`${this.name}:${note}`));
    this.#ev.push({ type: 'note', text: note });
  }

  /** A command that only adds a deadline. */
  addDeadline(deadline: number): void {
    this.deadlines.push(deadline);
    this.deadlines.sort((a, b) => a - b);
  }
}

/** A {@link TimerHost} over the real Node timers that counts how many host timers are live at once. */
export class CountingHost implements TimerHost {
  live = 0;
  maxLive = 0;
  sets = 0;
  readonly #live = new Set<unknown>();
  readonly handles: NodeJS.Timeout[] = [];

  set(callback: () => void, delayMs: number): unknown {
    this.sets++;
    const h = nodeTimerHost.set(() => {
      this.#live.delete(h);
      this.live = this.#live.size;
      callback();
    }, delayMs);
    this.#live.add(h);
    this.handles.push(h as NodeJS.Timeout);
    this.live = this.#live.size;
    this.maxLive = Math.max(this.maxLive, this.live);
    return h;
  }

  clear(handle: unknown): void {
    nodeTimerHost.clear(handle);
    this.#live.delete(handle);
    this.live = this.#live.size;
  }

  setRef(handle: unknown, ref: boolean): void {
    nodeTimerHost.setRef(handle, ref);
  }
}

/** Rejects after `ms` unless `promise` settles first (keeps every real-time wait bounded). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
