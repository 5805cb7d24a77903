/**
 * MachineDriver against real Node timers (small, bounded delays) with scriptable fake machines.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidStateError } from '../../src/errors.js';
import {
  MachineDriver,
  MAX_INLINE_TIMEOUTS,
  sharedScheduler,
  TimerScheduler,
  type CallbackErrorSource,
} from '../../src/node/driver.js';
import type { Datagram } from '../../src/types.js';
import { CountingHost, dg, FakeMachine, text, within, type FakeEvent } from './driver-fixtures.js';

const drivers: MachineDriver[] = [];
function track(d: MachineDriver): MachineDriver {
  drivers.push(d);
  return d;
}
afterEach(() => {
  for (const d of drivers.splice(0)) d.close();
});

function countTimeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('MachineDriver: timers', () => {
  it('honours deadlines in order and never calls handleTimeout early', async () => {
    const host = new CountingHost();
    const scheduler = new TimerScheduler({ host });
    const fired: { name: string; now: number; deadline: number }[] = [];
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    const driver = track(new MachineDriver({ send: () => {}, scheduler, onCallbackError: (e) => { throw e; } }));
    const t0 = driver.now();
    const offsets = { a: 45, b: 15, c: 30, d: 15 };
    for (const [name, off] of Object.entries(offsets)) {
      const m = new FakeMachine(name);
      m.addDeadline(t0 + off);
      driver.attach(m, (e: FakeEvent) => {
        if (e.type !== 'timeout') return;
        fired.push({ name, now: e.now, deadline: e.deadline });
        if (fired.length === 4) resolveAll();
      });
    }
    await within(all, 2000, 'four deadlines');
    expect(fired.map((f) => f.name)).toEqual(['b', 'd', 'c', 'a']);
    for (const f of fired) expect(f.now).toBeGreaterThanOrEqual(f.deadline);
    expect(scheduler.size).toBe(0);
    expect(host.live).toBe(0);
  });

  it('coalesces: N machines share one live host timer, re-armed only when the earliest deadline changes', async () => {
    const host = new CountingHost();
    const scheduler = new TimerScheduler({ host });
    const driver = track(new MachineDriver({ send: () => {}, scheduler }));
    const machines: FakeMachine[] = [];
    const t0 = driver.now();
    const N = 40;
    let count = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => (resolveAll = r));
    // Deadlines attached latest-first: every attach moves the earliest deadline earlier.
    for (let i = N - 1; i >= 0; i--) {
      const m = new FakeMachine(`m${i}`);
      m.addDeadline(t0 + 20 + i);
      machines.push(m);
      driver.attach(m, (e) => {
        if (e.type === 'timeout' && ++count === N) resolveAll();
      });
    }
    expect(scheduler.stats()).toMatchObject({ entries: N, hostTimers: 1 });
    expect(host.live).toBe(1);
    // A second driver on the same scheduler with later deadlines adds entries but no host timer.
    const other = track(new MachineDriver({ send: () => {}, scheduler }));
    const setsBefore = host.sets;
    for (let i = 0; i < 10; i++) {
      const m = new FakeMachine(`o${i}`);
      m.addDeadline(t0 + 5000 + i);
      other.attach(m);
    }
    expect(host.sets).toBe(setsBefore);
    expect(scheduler.size).toBe(N + 10);
    await within(all, 3000, `${N} deadlines`);
    expect(host.maxLive).toBe(1);
    for (const m of machines) expect(m.timeoutCalls.length).toBeGreaterThanOrEqual(1);
    other.close();
    expect(scheduler.stats()).toMatchObject({ entries: 0, hostTimers: 0 });
    expect(host.live).toBe(0);
  });

  it('close() removes every entry of the shared scheduler: no Node timer left', () => {
    const before = sharedScheduler.size;
    const timersBefore = countTimeouts();
    const driver = new MachineDriver({ send: () => {} });
    const t0 = driver.now();
    for (let i = 0; i < 25; i++) {
      const m = new FakeMachine(`m${i}`);
      m.addDeadline(t0 + 10_000 + i);
      driver.attach(m);
    }
    expect(sharedScheduler.size).toBe(before + 25);
    expect(countTimeouts()).toBeLessThanOrEqual(timersBefore + 1);
    driver.close();
    expect(sharedScheduler.size).toBe(before);
    expect(countTimeouts()).toBe(timersBefore);
    expect(driver.closed).toBe(true);
    driver.close(); // idempotent
    driver.receive(dg('m0 late'));
    driver.kick();
    expect(sharedScheduler.size).toBe(before);
    expect(() => driver.attach(new FakeMachine('x'))).toThrow(InvalidStateError);
  });

  it('detach() removes the machine and its entry', () => {
    const scheduler = new TimerScheduler();
    const driver = track(new MachineDriver({ send: () => {}, scheduler }));
    const a = new FakeMachine('a');
    const b = new FakeMachine('b');
    a.addDeadline(driver.now() + 10_000);
    b.addDeadline(driver.now() + 20_000);
    driver.attach(a);
    driver.attach(b);
    expect(scheduler.size).toBe(2);
    driver.detach(a);
    expect(scheduler.size).toBe(1);
    expect(driver.machineCount).toBe(1);
    expect(() => driver.kick(a)).toThrow(InvalidStateError);
    driver.close();
    expect(scheduler.size).toBe(0);
  });

  it('unref: true leaves the host timer unreferenced', () => {
    const host = new CountingHost();
    const scheduler = new TimerScheduler({ host });
    const driver = track(new MachineDriver({ send: () => {}, scheduler, unref: true }));
    const m = new FakeMachine('m');
    m.addDeadline(driver.now() + 10_000);
    driver.attach(m);
    expect(scheduler.stats().refEntries).toBe(0);
    expect(host.handles.at(-1)?.hasRef()).toBe(false);
    const strong = track(new MachineDriver({ send: () => {}, scheduler }));
    const s = new FakeMachine('s');
    s.addDeadline(driver.now() + 20_000);
    strong.attach(s);
    expect(host.handles.at(-1)?.hasRef()).toBe(true);
    strong.close();
    expect(host.handles.at(-1)?.hasRef()).toBe(false);
  });

  it('re-arms from pollTimeout after every drain (a command that adds a deadline)', async () => {
    const scheduler = new TimerScheduler();
    const driver = track(new MachineDriver({ send: () => {}, scheduler }));
    const m = new FakeMachine('m');
    const got = new Promise<FakeEvent>((resolve) => driver.attach(m, (e) => resolve(e)));
    expect(scheduler.size).toBe(0);
    m.addDeadline(driver.now() + 10);
    driver.kick(m);
    expect(scheduler.size).toBe(1);
    const e = await within(got, 2000, 'timeout event');
    expect(e.type).toBe('timeout');
    expect(scheduler.size).toBe(0);
  });
});

describe('MachineDriver: deadlines already due', () => {
  it('runs a deadline that is due when the drain ends inline, not a timer turn later', () => {
    const scheduler = new TimerScheduler();
    const events: string[] = [];
    const driver = track(new MachineDriver({ send: () => {}, scheduler }));
    const m = new FakeMachine('m');
    driver.attach(m, (e) => events.push(e.type));
    m.addDeadline(driver.now()); // e.g. a triggered check queued by a command
    driver.kick(m);
    expect(m.timeoutCalls).toHaveLength(1);
    expect(events).toEqual(['timeout']);
    expect(scheduler.size).toBe(0);
  });

  it('bounds inline runs per input, then yields to the timer (a machine stuck in the past cannot hog the loop)', async () => {
    const scheduler = new TimerScheduler();
    const driver = track(new MachineDriver({ send: () => {}, scheduler }));
    const m = new FakeMachine('m');
    m.pollTimeout = () => 0; // always overdue
    driver.attach(m);
    expect(m.timeoutCalls).toHaveLength(MAX_INLINE_TIMEOUTS);
    expect(scheduler.size).toBe(1); // the rest waits for a timer turn
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    await within(
      new Promise<void>((resolve) => {
        const poll = () => (m.timeoutCalls.length > MAX_INLINE_TIMEOUTS ? resolve() : setTimeout(poll, 1));
        poll();
      }),
      2000,
      'timer-driven timeout',
    );
    expect(immediateRan).toBe(true);
    driver.detach(m);
    expect(scheduler.size).toBe(0);
  });
});

describe('MachineDriver: drain loop', () => {
  it('drains transmits then events after attach, receive and kick', () => {
    const sent: string[] = [];
    const events: string[] = [];
    const driver = track(new MachineDriver({ send: (d) => sent.push(text(d)) }));
    const m = new FakeMachine('m');
    m.command('early'); // queued before attach: drained at attach
    driver.attach(m, (e) => events.push(e.type === 'note' ? `note:${e.text}` : e.type));
    expect(sent).toEqual(['m:early']);
    expect(events).toEqual(['note:early']);
    m.reply = (d) => dg(`m:reply-to-${text(d)}`);
    driver.receive(dg('m hello'));
    expect(sent).toEqual(['m:early', 'm:reply-to-m hello']);
    expect(events).toEqual(['note:early', 'received']);
    m.command('later');
    expect(sent).toHaveLength(2); // not drained until kicked
    driver.kick(m);
    expect(sent).toEqual(['m:early', 'm:reply-to-m hello', 'm:later']);
  });

  it('offers a datagram to machines in attach order; nobody taking it goes to onUnhandled', () => {
    const unhandled: string[] = [];
    const driver = track(new MachineDriver({ send: () => {}, onUnhandled: (d) => unhandled.push(text(d)) }));
    const a = new FakeMachine('a');
    const b = new FakeMachine('b');
    const both = new FakeMachine('both');
    both.accepts = () => true;
    driver.attach(a);
    driver.attach(b);
    driver.attach(both);
    driver.receive(dg('b1'));
    driver.receive(dg('a1'));
    driver.receive(dg('zz'));
    expect(a.received.map(text)).toEqual(['a1']);
    expect(b.received.map(text)).toEqual(['b1']);
    expect(both.received.map(text)).toEqual(['zz']);
    const lone = track(new MachineDriver({ send: () => {}, onUnhandled: (d) => unhandled.push(text(d)) }));
    lone.attach(new FakeMachine('a'));
    lone.receive(dg('nobody'));
    expect(unhandled).toEqual(['nobody']);
  });

  it('a throwing event callback is reported and the loop carries on (events, sends, timers)', async () => {
    const errors: [unknown, CallbackErrorSource][] = [];
    const sent: string[] = [];
    const seen: string[] = [];
    const driver = track(
      new MachineDriver({ send: (d) => sent.push(text(d)), onCallbackError: (e, s) => errors.push([e, s]) }),
    );
    const m = new FakeMachine('m');
    let timeoutSeen!: () => void;
    const timedOut = new Promise<void>((r) => (timeoutSeen = r));
    driver.attach(m, (e) => {
      seen.push(e.type === 'note' ? e.text : e.type);
      if (e.type === 'timeout') timeoutSeen();
      if (e.type === 'note' && e.text === 'bad') throw new Error('user bug');
    });
    m.command('bad');
    m.command('good');
    m.addDeadline(driver.now() + 10);
    driver.kick(m);
    expect(seen).toEqual(['bad', 'good']);
    expect(sent).toEqual(['m:bad', 'm:good']);
    expect(errors).toHaveLength(1);
    expect(errors[0]![1]).toBe('event');
    expect((errors[0]![0] as Error).message).toBe('user bug');
    await within(timedOut, 2000, 'timer after a throwing callback');
    expect(seen).toEqual(['bad', 'good', 'timeout']);
  });

  it('without onCallbackError, a throwing callback becomes a process warning', async () => {
    // Captured, not printed: Node's own 'warning' listener would dump the stack into every test run.
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const driver = track(new MachineDriver({ send: () => {} }));
      const m = new FakeMachine('m');
      driver.attach(m, () => {
        throw new Error('unreported bug');
      });
      m.command('x');
      driver.kick(m);
      await within(
        new Promise<void>((r) => {
          const poll = () => (emit.mock.calls.length > 0 ? r() : setImmediate(poll));
          poll();
        }),
        2000,
        'process warning',
      );
      expect(emit).toHaveBeenCalledTimes(1);
      const [message, options] = emit.mock.calls[0]! as unknown as [string, { code?: string; type?: string }];
      expect(message).toContain('unreported bug');
      expect(options).toMatchObject({ type: 'IcewireCallbackWarning', code: 'ICEWIRE_CALLBACK_ERROR' });
    } finally {
      emit.mockRestore();
    }
  });

  it('a throwing send is reported as "send" and later transmits still go out', () => {
    const errors: CallbackErrorSource[] = [];
    const sent: string[] = [];
    const driver = track(
      new MachineDriver({
        send: (d) => {
          if (text(d) === 'm:first') throw new Error('socket gone');
          sent.push(text(d));
        },
        onCallbackError: (_e, s) => errors.push(s),
      }),
    );
    const m = new FakeMachine('m');
    driver.attach(m);
    m.command('first');
    m.command('second');
    driver.kick();
    expect(sent).toEqual(['m:second']);
    expect(errors).toEqual(['send']);
  });

  it('a machine that throws is reported as "machine" and stays attached', () => {
    const errors: CallbackErrorSource[] = [];
    const driver = track(new MachineDriver({ send: () => {}, onCallbackError: (_e, s) => errors.push(s) }));
    const m = new FakeMachine('m');
    driver.attach(m);
    const original = m.handleReceive.bind(m);
    m.handleReceive = () => {
      throw new Error('machine bug');
    };
    driver.receive(dg('m x'));
    expect(errors).toEqual(['machine']);
    m.handleReceive = original;
    driver.receive(dg('m y'));
    expect(m.received.map(text)).toEqual(['m y']);
  });

  it('re-entrancy: a command + kick() inside an event callback is queued, not recursed into', () => {
    const sent: string[] = [];
    const order: string[] = [];
    const driver = track(new MachineDriver({ send: (d) => sent.push(text(d)), onCallbackError: (e) => { throw e; } }));
    const m = new FakeMachine('m');
    driver.attach(m, (e) => {
      order.push(e.type === 'note' ? e.text : e.type);
      if (e.type === 'received' && e.data === 'm outer') {
        m.inCallback = true;
        m.command('from-callback');
        driver.kick(m); // must not drain m while we are still inside its pollEvent loop
        driver.receive(dg('m nested')); // likewise queued
        m.inCallback = false;
      }
    });
    driver.receive(dg('m outer'));
    expect(m.violations).toBe(0);
    expect(sent).toEqual(['m:from-callback']);
    expect(order).toEqual(['received', 'from-callback', 'received']);
    expect(m.received.map(text)).toEqual(['m outer', 'm nested']);
  });

  it('re-entrancy: a command without kick() inside a callback is still drained', () => {
    const sent: string[] = [];
    const driver = track(new MachineDriver({ send: (d) => sent.push(text(d)) }));
    const m = new FakeMachine('m');
    let once = true;
    driver.attach(m, () => {
      if (once) {
        once = false;
        m.command('no-kick');
      }
    });
    driver.receive(dg('m go'));
    expect(sent).toEqual(['m:no-kick']);
  });

  it('re-entrancy: two drivers whose send() synchronously feeds the other ping-pong without recursion', () => {
    const depth = { now: 0, max: 0 };
    let a!: MachineDriver;
    let b!: MachineDriver;
    const wrap = (target: () => MachineDriver) => (d: Datagram) => {
      depth.now++;
      depth.max = Math.max(depth.max, depth.now);
      target().receive(d);
      depth.now--;
    };
    a = track(new MachineDriver({ send: wrap(() => b), onCallbackError: (e) => { throw e; } }));
    b = track(new MachineDriver({ send: wrap(() => a), onCallbackError: (e) => { throw e; } }));
    const ma = new FakeMachine('A');
    const mb = new FakeMachine('B');
    const LIMIT = 2000; // deep enough to overflow the stack if each hop recursed through a drain
    const n = (d: Datagram) => Number(text(d).split(' ')[1]);
    ma.accepts = (d) => text(d).startsWith('A');
    mb.accepts = (d) => text(d).startsWith('B');
    ma.reply = (d) => (n(d) < LIMIT ? dg(`B ${n(d) + 1}`) : undefined);
    mb.reply = (d) => (n(d) < LIMIT ? dg(`A ${n(d) + 1}`) : undefined);
    a.attach(ma);
    b.attach(mb);
    a.receive(dg('A 0'));
    expect(ma.received.length + mb.received.length).toBe(LIMIT + 1);
    expect(n(ma.received.at(-1)!) === LIMIT || n(mb.received.at(-1)!) === LIMIT).toBe(true);
    expect(depth.max).toBeLessThanOrEqual(2);
  });

  it('close() from inside a callback stops the drain and leaves no entry', () => {
    const scheduler = new TimerScheduler();
    const sent: string[] = [];
    const driver = new MachineDriver({ send: (d) => sent.push(text(d)), scheduler });
    const m = new FakeMachine('m');
    m.addDeadline(driver.now() + 10_000);
    driver.attach(m, (e) => {
      if (e.type === 'note' && e.text === 'one') driver.close();
    });
    expect(scheduler.size).toBe(1);
    m.command('one');
    m.command('two');
    driver.kick();
    // 'm:two' was already sent (transmits drain before events), but no re-arm happened after close.
    expect(sent).toEqual(['m:one', 'm:two']);
    expect(scheduler.size).toBe(0);
  });
});
