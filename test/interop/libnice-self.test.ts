/**
 * Proves the libnice interop harness on its own: two libnice processes (controlling and controlled) wired through
 * the JSON protocol connect over loopback and exchange data. The icewire-vs-libnice tests reuse the same helper.
 *
 * When libnice or PyGObject is missing this file skips locally (with a warning) but FAILS under CI, so a broken
 * install step can never pass as "skipped".
 */
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLibnice, closePeers, LibnicePeer, LibnicePeerError, type LibniceParameters } from './libnice.js';

const availability = checkLibnice();
const inCi = Boolean(process.env.CI);
const run = availability.ok || inCi;
if (!availability.ok && !inCi) {
  console.warn(`libnice interop tests skipped: ${availability.reason}`);
}

const peers: LibnicePeer[] = [];
function start(options: Parameters<typeof LibnicePeer.start>[0]): LibnicePeer {
  const p = LibnicePeer.start({ hardTimeoutSec: 20, waitMs: 10_000, ...options });
  peers.push(p);
  return p;
}
afterEach(async () => {
  await closePeers(peers.splice(0));
});

const canBindV6 = await new Promise<boolean>((resolve) => {
  const s = createSocket({ type: 'udp6', ipv6Only: true });
  s.once('error', () => {
    s.close();
    resolve(false);
  });
  s.bind({ address: '::1', port: 0 }, () => s.close(() => resolve(true)));
});

/** Port of a `candidate:` line (RFC 8839 §5.1: foundation component transport priority address port typ ...). */
function candidatePort(line: string): number {
  return Number(line.split(' ')[5]);
}

function checkParameters(p: LibniceParameters, address: string): void {
  // RFC 8445 §5.3: ufrag at least 4 characters, pwd at least 22 (ice-chars).
  expect(p.ufrag).toMatch(/^[A-Za-z0-9+/]{4,256}$/);
  expect(p.pwd).toMatch(/^[A-Za-z0-9+/]{22,256}$/);
  expect(p.candidates.length).toBeGreaterThanOrEqual(1);
  for (const c of p.candidates) {
    expect(c).toMatch(/^candidate:\S+ 1 UDP \d+ \S+ \d+ typ host/);
    expect(c.split(' ')[4]).toBe(address);
  }
}

async function connectPair(address: string) {
  const a = start({ role: 'controlling', echo: false, address });
  const b = start({ role: 'controlled', address });
  const [la, lb] = await Promise.all([a.local(), b.local()]);
  checkParameters(la, address);
  checkParameters(lb, address);
  a.setRemote(lb);
  b.setRemote(la);
  await Promise.all([a.waitState('ready'), b.waitState('ready')]);
  const [sa, sb] = await Promise.all([a.waitSelected(), b.waitSelected()]);
  return { a, b, la, lb, sa, sb };
}

describe.skipIf(!run)('libnice interop harness (libnice <-> libnice)', () => {
  it('libnice and PyGObject are installed for /usr/bin/python3', () => {
    expect(availability.ok ? 'available' : availability.reason).toBe('available');
  });

  it('connects controlling <-> controlled on 127.0.0.1 and echoes binary data', async () => {
    const { a, b, la, lb, sa, sb } = await connectPair('127.0.0.1');
    // Both agents selected the same pair, seen from each side.
    expect(sa.local.port).toBe(candidatePort(la.candidates[0]!));
    expect(sa.remote.port).toBe(candidatePort(lb.candidates[0]!));
    expect(sb.local.port).toBe(sa.remote.port);
    expect(sb.remote.port).toBe(sa.local.port);
    expect(sa.local.type).toBe('host');
    expect(a.states).toContain('connecting');
    expect(b.states.indexOf('connected')).toBeLessThan(b.states.indexOf('ready'));

    const payload = new Uint8Array([0x00, 0xff, 0x80, 0x0a, ...new TextEncoder().encode('icewire'), 0x00]);
    expect(await a.send(payload)).toBe(payload.length);
    const atB = await b.nextData();
    expect([...atB.data]).toEqual([...payload]);
    expect(atB.echoed).toBe(payload.length);
    const echo = await a.nextData();
    expect([...echo.data]).toEqual([...payload]);
    expect(echo.echoed).toBe(-1); // a runs with echo off, or the two would ping-pong forever

    await Promise.all([a.close(), b.close()]);
    expect(a.exitCode).toBe(0);
    expect(a.messages.at(-1)).toEqual({ type: 'exit', reason: 'quit' });
  });

  it.skipIf(!canBindV6)('connects over ::1', async () => {
    const { sa } = await connectPair('::1');
    expect(sa.local.address).toBe('::1');
    expect(sa.remote.address).toBe('::1');
  });

  it('send before a pair is selected reports -1 (libnice drops it)', async () => {
    const a = start({ role: 'controlling' });
    await a.local();
    expect(await a.send(new Uint8Array([1, 2, 3]))).toBe(-1);
  });

  it('reports bad commands without dying', async () => {
    const a = start({ role: 'controlled' });
    await a.local();
    a.setRemote({ ufrag: 'abcd', pwd: 'abcdefghijklmnopqrstuv', candidates: ['candidate:not a candidate'] });
    const err = await new Promise((resolve) => {
      const check = () => {
        const m = a.messages.find((x) => x.type === 'error');
        if (m) resolve(m);
        else setTimeout(check, 10);
      };
      check();
    });
    expect(err).toMatchObject({ type: 'error' });
    expect(await a.send(new Uint8Array([1]))).toBe(-1); // still answering
  });

  it('waits time out with a diagnostic, and close() ends the process', async () => {
    const a = start({ role: 'controlling' });
    await a.local();
    const err = await a.waitState('ready', 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibnicePeerError);
    expect((err as Error).message).toMatch(/timed out after 300 ms waiting for state ready[\s\S]*last messages/);
    const pid = a.pid!;
    await a.close();
    expect(() => process.kill(pid, 0)).toThrow(); // ESRCH: the process is gone
  });

  it('the hard timeout ends a forgotten peer with exit code 2', async () => {
    const a = start({ role: 'controlled', hardTimeoutSec: 1 });
    expect(await a.waitExit(5000)).toBe(2);
    expect(a.messages.at(-1)).toEqual({ type: 'exit', reason: 'timeout' });
    await expect(a.local(100)).resolves.toMatchObject({ candidates: expect.any(Array) });
    await expect(a.waitState('ready', 100)).rejects.toThrow(/exited \(code 2\)/);
  });
});
