/** ICE-TCP (RFC 6544) between two IceAgents over real sockets on 127.0.0.1: every tcptype combination, TCP only. */
import { Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AgentMachine } from '../../src/agent-machine.js';
import { IceArgumentError } from '../../src/errors.js';
import { IceAgent } from '../../src/node/ice-agent.js';
import { agentPool, connectPair, nextData } from './agent-helpers.js';

const pool = agentPool();
afterEach(() => pool.closeAll());

describe('IceAgent over ICE-TCP on loopback', () => {
  for (const [name, a, b] of [
    ['controlling active, controlled passive', ['active'], ['passive']],
    ['controlling passive, controlled active', ['passive'], ['active']],
    ['both kinds on both sides', ['active', 'passive'], ['active', 'passive']],
  ] as const) {
    it(`connects TCP only: ${name}`, async () => {
      const x = pool.make({ role: 'controlling', transports: ['tcp'], tcpTypes: [...a] });
      const y = pool.make({ role: 'controlled', transports: ['tcp'], tcpTypes: [...b] });
      await connectPair(x, y);
      for (const c of [...x.getLocalCandidates(), ...y.getLocalCandidates()]) {
        expect(c.transport).toBe('tcp');
        if (c.tcpType === 'active') expect(c.port).toBe(9);
      }
      for (const agent of [x, y]) expect(agent.getSelectedCandidatePair()?.local.transport).toBe('tcp');
      const got = nextData(y);
      expect(x.send(Buffer.from('hello over tcp'))).toBe(true);
      expect(await got).toBe('hello over tcp');
      const back = nextData(x);
      expect(y.send(Buffer.from('and back'))).toBe(true);
      expect(await back).toBe('and back');
    });
  }

  it('carries a burst of datagrams in order, each its own frame', async () => {
    const x = pool.make({ role: 'controlling', transports: ['tcp'] });
    const y = pool.make({ role: 'controlled', transports: ['tcp'] });
    await connectPair(x, y);
    const got: string[] = [];
    const all = new Promise<void>((resolve) => y.on('data', (d) => (got.push(d.toString()), got.length === 200 && resolve())));
    for (let i = 0; i < 200; i++) expect(x.send(Buffer.from(`m${i}`))).toBe(true);
    await all;
    expect(got).toEqual(Array.from({ length: 200 }, (_v, i) => `m${i}`));
  });

  it('data frames take the direct route: no handleReceive, queue or pump per chunk; the Buffer may be kept', async () => {
    const x = pool.make({ role: 'controlling', transports: ['tcp'] });
    const y = pool.make({ role: 'controlled', transports: ['tcp'] });
    await connectPair(x, y);
    const full = vi.spyOn(AgentMachine.prototype, 'handleReceive');
    const direct = vi.spyOn(AgentMachine.prototype, 'takeTcp');
    try {
      const got: Buffer[] = [];
      const all = new Promise<void>((resolve) => y.on('data', (d) => (got.push(d), got.length === 100 && resolve())));
      for (let i = 0; i < 100; i++) x.send(Buffer.from(`k${i}`));
      await all;
      // Every chunk went the direct way; a STUN chunk (a consent check, if one fell in the window) may go in full.
      expect(direct.mock.calls.length).toBeGreaterThan(0);
      expect(full.mock.calls.filter(([, d]) => d.transport === 'tcp').length).toBeLessThanOrEqual(2);
      // Kept beyond the event, each still holds its own bytes (views of chunks Node never reuses).
      await new Promise((r) => setTimeout(r, 20));
      for (let i = 0; i < 100; i++) x.send(Buffer.from(`z${i}`));
      await new Promise((r) => setTimeout(r, 50));
      expect(got.slice(0, 100).map((b) => b.toString())).toEqual(Array.from({ length: 100 }, (_v, i) => `k${i}`));
    } finally {
      full.mockRestore();
      direct.mockRestore();
    }
  });

  it('mixed: UDP and TCP candidates are gathered, UDP is selected', async () => {
    const x = pool.make({ role: 'controlling', transports: ['udp', 'tcp'] });
    const y = pool.make({ role: 'controlled', transports: ['udp', 'tcp'] });
    await connectPair(x, y);
    expect(new Set(x.getLocalCandidates().map((c) => c.transport))).toEqual(new Set(['udp', 'tcp']));
    await new Promise((r) => setTimeout(r, 300));
    expect(x.getSelectedCandidatePair()?.local.transport).toBe('udp');
  });

  it('the selected connection destroyed under the agent is reopened (RFC 6544 §11.1): same pair, data flows again', async () => {
    const opened: Socket[] = [];
    const x = pool.make({ role: 'controlling', transports: ['tcp'], tcpTypes: ['active'] });
    const y = pool.make({ role: 'controlled', transports: ['tcp'], tcpTypes: ['passive'] });
    // The sockets the agents open (x's connections): wrapped to reach the one under the selected pair.
    const original = Socket.prototype.connect;
    Socket.prototype.connect = function (this: Socket, ...args: unknown[]) {
      opened.push(this);
      return (original as (...a: unknown[]) => Socket).apply(this, args);
    } as typeof original;
    try {
      await connectPair(x, y);
      if (x.state !== 'completed') await new Promise<void>((resolve) => x.on('statechange', (s) => s === 'completed' && resolve()));
      const [xs, ys] = [x.getSelectedCandidatePair(), y.getSelectedCandidatePair()];
      const live = opened.filter((s) => !s.destroyed);
      expect(live).toHaveLength(1);
      const states: string[] = [];
      for (const a of [x, y]) a.on('statechange', (s) => states.push(s));
      live[0]!.destroy();
      await new Promise((r) => setTimeout(r, 300));
      expect(opened.filter((s) => !s.destroyed)).toHaveLength(1); // the new connection
      expect(opened.filter((s) => !s.destroyed)[0]).not.toBe(live[0]);
      const got = nextData(y);
      expect(x.send(Buffer.from('after reopen'))).toBe(true);
      expect(await got).toBe('after reopen');
      const back = nextData(x);
      expect(y.send(Buffer.from('and back'))).toBe(true);
      expect(await back).toBe('and back');
      expect(states).not.toContain('failed');
      expect(x.getSelectedCandidatePair()).toEqual(xs);
      expect(y.getSelectedCandidatePair()?.local).toEqual(ys?.local);
    } finally {
      Socket.prototype.connect = original;
    }
  });

  it('a peer closing for good fails the TCP agent once the reopening attempts are used up', async () => {
    const x = pool.make({ role: 'controlling', transports: ['tcp'] });
    const y = pool.make({ role: 'controlled', transports: ['tcp'] });
    await connectPair(x, y);
    if (x.state !== 'completed') await new Promise<void>((resolve) => x.on('statechange', (s) => s === 'completed' && resolve()));
    const failed = new Promise<void>((resolve) => x.on('statechange', (s) => s === 'failed' && resolve()));
    await y.close();
    await failed;
    expect(x.send(Buffer.from('nobody'))).toBe(false);
  });

  it('rejects bad transports with a typed error', () => {
    expect(() => new IceAgent({ transports: [] })).toThrow(IceArgumentError);
    expect(() => new IceAgent({ transports: ['sctp' as 'udp'] })).toThrow(IceArgumentError);
    expect(() => new IceAgent({ tcpTypes: ['so' as 'active'] })).toThrow(IceArgumentError);
  });
});

describe('IceSdpSession with ICE-TCP only', () => {
  it('offers TCP candidates with tcptype, answers, and connects over TCP (a TCP/RTP/AVP section)', async () => {
    const { IceSdpSession } = await import('../../src/node/sdp-session.js');
    const loop = { includeLoopback: true, addressFilter: (x: string) => x === '127.0.0.1' } as const;
    const app = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 TCP/RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');
    const alice = new IceSdpSession({ ...loop, transports: ['tcp'] });
    const bob = new IceSdpSession({ ...loop, transports: ['tcp'], tcpTypes: ['passive'] });
    try {
      const offer = await alice.createOffer(app);
      expect(offer).toMatch(/a=candidate:\S+ 1 tcp \d+ 127\.0\.0\.1 9 typ host tcptype active/);
      expect(offer).toMatch(/a=candidate:\S+ 1 tcp \d+ 127\.0\.0\.1 \d+ typ host tcptype passive/);
      expect(offer).toContain('a=setup:passive');
      await bob.setRemoteDescription(offer, 'offer');
      const answer = await bob.createAnswer(app);
      expect(answer).not.toMatch(/tcptype active/);
      await alice.setRemoteDescription(answer, 'answer');
      const a = alice.agent()!;
      const b = bob.agent()!;
      const up = (x: typeof a) => new Promise<void>((resolve) => (x.state === 'connected' || x.state === 'completed' ? resolve() : x.on('statechange', (s) => (s === 'connected' || s === 'completed') && resolve())));
      await Promise.all([up(a), up(b)]);
      expect(a.getSelectedCandidatePair()?.local.transport).toBe('tcp');
      const got = nextData(b);
      a.send(Buffer.from('sdp over tcp'));
      expect(await got).toBe('sdp over tcp');
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });
});
