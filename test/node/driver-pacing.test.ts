/**
 * The edge's half of the process-wide 5 ms rule (RFC 8445 §14.2): the driver stamps the pacer with the time a paced
 * datagram really left, and the scheduler hands each machine of a batch a fresh clock reading. Manual clock and
 * host timer: exact, no real time involved.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/node/clock.js';
import { MachineDriver, TimerScheduler, type TimerHost } from '../../src/node/driver.js';
import type { SansIoMachine } from '../../src/machine.js';
import { GlobalPacer } from '../../src/stun/pacing.js';
import type { Datagram } from '../../src/types.js';
import { dg, text } from './driver-fixtures.js';

/** A host whose one pending timer the test fires by hand. */
class HandHost implements TimerHost {
  pending: (() => void) | undefined;
  set(callback: () => void): unknown {
    this.pending = callback;
    return 1;
  }
  clear(): void {
    this.pending = undefined;
  }
  setRef(): void {}
}

/** A machine that, when its deadline comes, asks the pacer for a slot and queues one paced transmit if granted. */
class PacedSender implements SansIoMachine<never> {
  readonly #client;
  readonly #name: string;
  deadline: number | undefined;
  readonly asked: number[] = [];
  readonly #tx: Datagram[] = [];
  constructor(name: string, pacer: GlobalPacer, deadline: number) {
    this.#name = name;
    this.#client = pacer.register();
    this.deadline = deadline;
  }
  handleReceive(): boolean {
    return false;
  }
  handleTimeout(now: number): void {
    this.asked.push(now);
    if (this.#client.request(now, 'ordinary')) {
      this.#tx.push({ ...dg(`${this.#name}:check`), paced: true });
      this.#tx.push(dg(`${this.#name}:retransmission`)); // unmarked: not stamped
      this.deadline = undefined;
    } else {
      this.deadline = this.#client.nextSlot();
    }
  }
  pollTransmit(): Datagram | undefined {
    return this.#tx.shift();
  }
  pollEvent(): undefined {
    return undefined;
  }
  pollTimeout(): number | undefined {
    return this.deadline;
  }
}

function setup() {
  const clock = new ManualClock(1000);
  const host = new HandHost();
  const scheduler = new TimerScheduler({ clock, host });
  const pacer = new GlobalPacer({ intervalMs: 5 });
  const sent: { text: string; at: number }[] = [];
  const stamps: number[] = [];
  const stamping = { noteSent: (at: number) => (stamps.push(at), pacer.noteSent(at)) };
  // Writing to the socket takes 3 ms of the batch (a slow drain, a GC pause): the next machine runs later.
  const send = (d: Datagram) => {
    clock.advance(3);
    sent.push({ text: text(d), at: clock.now() });
  };
  return { clock, host, scheduler, pacer, sent, stamps, stamping, send };
}

describe('MachineDriver and the process pacer', () => {
  it('stamps the pacer when a paced datagram has left, and only then', () => {
    const { clock, host, scheduler, pacer, sent, stamps, stamping, send } = setup();
    const drivers = ['a', 'b'].map(() => new MachineDriver({ send, scheduler, pacer: stamping }));
    const a = new PacedSender('a', pacer, 1000);
    const b = new PacedSender('b', pacer, 1000);
    drivers[0]!.attach(a);
    drivers[1]!.attach(b);
    // Both due at 1000: a is granted at 1000 but its datagram leaves at 1003.
    expect(sent.map((s) => s.text)).toEqual(['a:check', 'a:retransmission']);
    expect(stamps).toEqual([1003]); // the retransmission is not stamped
    // b was refused at 1006 > 1000 + 5 only because of the stamp: its slot opens 5 ms after a's datagram, at 1008.
    expect(b.asked).toEqual([1006]);
    expect(b.deadline).toBe(1008);
    clock.set(1008);
    host.pending!();
    expect(sent.map((s) => s.text)).toEqual(['a:check', 'a:retransmission', 'b:check', 'b:retransmission']);
    const checks = sent.filter((s) => s.text.endsWith(':check')).map((s) => s.at);
    expect(checks[1]! - checks[0]!).toBeGreaterThanOrEqual(5);
    for (const d of drivers) d.close();
  });

  it('without a pacer option nothing is stamped (an agent created with pacer: false)', () => {
    const { scheduler, pacer, sent, send } = setup();
    const d = new MachineDriver({ send, scheduler });
    d.attach(new PacedSender('a', pacer, 1000));
    expect(sent).toHaveLength(2);
    expect(pacer.minSpacingMs).toBe(Infinity);
    d.close();
  });
});

describe('TimerScheduler batches', () => {
  it('each callback of a batch gets the clock read just before it runs, not the batch start', () => {
    const clock = new ManualClock(0);
    const host = new HandHost();
    const scheduler = new TimerScheduler({ clock, host });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      scheduler.createTimer((now) => {
        seen.push(now);
        clock.advance(2); // this machine's work takes 2 ms
      }).schedule(10);
    }
    clock.set(10);
    host.pending!();
    expect(seen).toEqual([10, 12, 14]);
  });
});
