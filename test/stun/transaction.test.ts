/**
 * RFC 8489 §6.2.1 / §6.2.2 retransmission schedule, in virtual time.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TI_MS, TransactionTable, TransactionTimer, transactionKey, type TransactionTiming } from '../../src/stun/transaction.js';
import type { Datagram } from '../../src/types.js';

/** Drives a timer by jumping to each deadline; returns the send times and the time-out time. */
function runTimer(timing?: TransactionTiming): { sends: number[]; timeoutAt: number | undefined } {
  const timer = new TransactionTimer(0, timing);
  const sends: number[] = [];
  let timeoutAt: number | undefined;
  for (let guard = 0; guard < 100; guard++) {
    const at = timer.pollTimeout();
    if (at === undefined) break;
    // Calls a little early must do nothing.
    if (at > 0) expect(timer.handleTimeout(at - 1)).toBe('wait');
    const r = timer.handleTimeout(at);
    if (r === 'send') sends.push(at);
    if (r === 'timeout') timeoutAt = at;
  }
  return { sends, timeoutAt };
}

describe('TransactionTimer', () => {
  it('UDP defaults: sends at 0, 500, 1500, 3500, 7500, 15500, 31500 ms; times out at 39500 ms (RFC 8489 §6.2.1)', () => {
    const { sends, timeoutAt } = runTimer();
    expect(sends).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(timeoutAt).toBe(39500);
  });

  it('reliable transport: one send, time-out after Ti = 39.5 s (RFC 8489 §6.2.2)', () => {
    const { sends, timeoutAt } = runTimer({ reliable: true });
    expect(sends).toEqual([0]);
    expect(timeoutAt).toBe(DEFAULT_TI_MS);
    expect(DEFAULT_TI_MS).toBe(39500);
  });

  it('custom RTO, Rc, Rm and an RTO cap', () => {
    expect(runTimer({ rtoMs: 100, rc: 3, rm: 4 })).toEqual({ sends: [0, 100, 300], timeoutAt: 700 });
    expect(runTimer({ rtoMs: 500, maxRtoMs: 1000 }).sends).toEqual([0, 500, 1500, 2500, 3500, 4500, 5500]);
  });

  it('late calls keep the schedule anchored to the deadlines, not to the late time', () => {
    const t = new TransactionTimer(1000);
    expect(t.handleTimeout(1000)).toBe('send');
    expect(t.pollTimeout()).toBe(1500);
    // 700 ms late: one send owed now, the next deadline stays where the schedule says (1000 + 500 + 1000).
    expect(t.handleTimeout(2200)).toBe('send');
    expect(t.pollTimeout()).toBe(2500);
    expect(t.handleTimeout(2200)).toBe('wait');
    expect(t.sends).toBe(2);
  });

  it('finish stops it', () => {
    const t = new TransactionTimer(0);
    t.handleTimeout(0);
    t.finish();
    expect(t.finished).toBe(true);
    expect(t.pollTimeout()).toBeUndefined();
    expect(t.handleTimeout(1e9)).toBe('wait');
  });
});

const local = { address: '127.0.0.1', port: 5000 };
const remote = { address: '127.0.0.1', port: 3478 };
const request = (n: number, transport?: Datagram['transport']): Datagram =>
  transport ? { local, remote, data: new Uint8Array([n]), transport } : { local, remote, data: new Uint8Array([n]) };
const id = (n: number) => new Uint8Array(12).fill(n);

function drain<T>(table: TransactionTable<T>): Datagram[] {
  const out: Datagram[] = [];
  for (let d = table.pollTransmit(); d; d = table.pollTransmit()) out.push(d);
  return out;
}

describe('TransactionTable', () => {
  it('virtual-time run: the seven sends and then one timeout event', () => {
    const table = new TransactionTable<string>();
    table.start(0, id(1), request(1), 'ctx');
    const sendTimes: number[] = drain(table).map(() => 0);
    let now = 0;
    for (;;) {
      const next = table.pollTimeout();
      if (next === undefined) break;
      now = next;
      table.handleTimeout(now);
      for (const _ of drain(table)) sendTimes.push(now);
    }
    expect(sendTimes).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(now).toBe(39500);
    expect(table.pollEvent()).toEqual({ type: 'timeout', key: transactionKey(id(1)), context: 'ctx' });
    expect(table.pollEvent()).toBeUndefined();
    expect(table.size).toBe(0);
  });

  it('a stream transport makes the transaction reliable: one send, time-out at 39.5 s', () => {
    const table = new TransactionTable<number>();
    table.start(0, id(2), request(2, 'tcp'), 7);
    expect(drain(table)).toHaveLength(1);
    expect(table.pollTimeout()).toBe(39500);
    table.handleTimeout(39499);
    expect(table.pollEvent()).toBeUndefined();
    table.handleTimeout(39500);
    expect(drain(table)).toHaveLength(0);
    expect(table.pollEvent()?.type).toBe('timeout');
  });

  it('a late handleTimeout owing several sends puts one copy on the wire', () => {
    const table = new TransactionTable<number>();
    table.start(0, id(3), request(3), 0);
    drain(table);
    table.handleTimeout(4000); // owes the 500, 1500 and 3500 ms sends
    expect(drain(table)).toHaveLength(1);
    expect(table.pollTimeout()).toBe(7500);
  });

  it('a very late call that reaches the time-out sends nothing and reports the time-out', () => {
    const table = new TransactionTable<number>();
    table.start(0, id(4), request(4), 0);
    drain(table);
    table.handleTimeout(100_000);
    expect(drain(table)).toHaveLength(0);
    expect(table.pollEvent()?.type).toBe('timeout');
  });

  it('take matches a response, stops retransmission and reports the number of sends', () => {
    const table = new TransactionTable<string>();
    table.start(0, id(5), request(5), 'a');
    table.start(0, id(6), request(6), 'b');
    drain(table);
    table.handleTimeout(500);
    expect(drain(table)).toHaveLength(2);
    expect(table.peek(id(5))).toBe('a');
    expect(table.take(id(5))).toMatchObject({ context: 'a', sends: 2 });
    expect(table.take(id(5))).toBeUndefined();
    expect(table.size).toBe(1);
    table.handleTimeout(1500);
    expect(drain(table).map((d) => d.data[0])).toEqual([6]);
    table.cancelWhere((c) => c === 'b');
    expect(table.size).toBe(0);
    expect(table.pollTimeout()).toBeUndefined();
  });
});
