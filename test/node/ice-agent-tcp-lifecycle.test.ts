/**
 * ICE-TCP (RFC 6544) over an agent's life on loopback sockets: ICE restarts with data flowing (TCP only, and UDP
 * beside TCP; either side restarting, the answer arriving 50 ms after the offer), and dropping component 2 when the
 * answer accepts rtcp-mux (its listener and connections close).
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { IceAgent } from '../../src/node/ice-agent.js';
import { agentPool, connectPair, loopback, nextData } from './agent-helpers.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}
const handles = (name: string) => process.getActiveResourcesInfo().filter((x) => x === name).length;

/** Whether something listens on 127.0.0.1:`port` (a refused connection says no). */
function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/**
 * `initiator` restarts and offers its new parameters and candidates; the peer restarts, answers at once, and the
 * answer reaches the initiator 50 ms later (so the peer's checks of the new session, and on a controlling peer its
 * nomination, arrive before it).
 */
async function restartFrom(initiator: IceAgent, peer: IceAgent): Promise<void> {
  initiator.restart();
  await initiator.gather();
  peer.restart();
  await peer.gather();
  peer.setRemoteParameters(initiator.getLocalParameters());
  for (const c of initiator.getLocalCandidates()) peer.addRemoteCandidate(c);
  peer.endOfRemoteCandidates();
  await sleep(50);
  initiator.setRemoteParameters(peer.getLocalParameters());
  for (const c of peer.getLocalCandidates()) initiator.addRemoteCandidate(c);
  initiator.endOfRemoteCandidates();
}

describe('IceAgent restart with ICE-TCP', () => {
  const { make, closeAll } = agentPool();
  afterEach(closeAll);

  for (const transports of [['tcp'], ['udp', 'tcp']] as const) {
    for (const side of ['controlling', 'controlled'] as const) {
      it(`${transports.join('+')}: the ${side} side restarts with data flowing; both end on a new working pair`, async () => {
        const a = make({ role: 'controlling', transports: [...transports] });
        const b = make({ role: 'controlled', transports: [...transports] });
        await connectPair(a, b);
        expect(await until(() => a.state === 'completed' && b.state === 'completed', 3000)).toBe(true);
        const old = { a: a.getSelectedCandidatePair()!, b: b.getSelectedCandidatePair()! };
        const tcpPorts = (x: IceAgent) => x.getLocalCandidates().filter((c) => c.transport === 'tcp').map((c) => `${c.tcpType}:${c.port}`);
        const listeners = { a: tcpPorts(a), b: tcpPorts(b) };
        const sockets = handles('TCPSocketWrap');
        const got = { a: [] as number[], b: [] as number[] };
        a.on('data', () => got.a.push(Date.now()));
        b.on('data', () => got.b.push(Date.now()));
        const changed = { a: 0, b: 0 };
        const pump = setInterval(() => {
          a.send(Buffer.from('x'));
          b.send(Buffer.from('y'));
        }, 10);
        try {
          const start = Date.now();
          a.on('selectedcandidatepairchange', () => changed.a++);
          b.on('selectedcandidatepairchange', () => changed.b++);
          if (side === 'controlling') await restartFrom(a, b);
          else await restartFrom(b, a);
          // RFC 6544 §9.2: the TCP candidates keep their listeners; only UDP moves to new ports.
          expect(tcpPorts(a)).toEqual(listeners.a);
          expect(tcpPorts(b)).toEqual(listeners.b);
          const moved = () => changed.a > 0 && changed.b > 0 && a.state === 'completed' && b.state === 'completed';
          expect(await until(moved, 5000)).toBe(true);
          const pa = a.getSelectedCandidatePair()!;
          const pb = b.getSelectedCandidatePair()!;
          expect(pa).not.toBe(old.a);
          expect(pb).not.toBe(old.b);
          expect(pa.local.transport).toBe(old.a.local.transport);
          if (pa.local.transport === 'udp') expect([pa.local.port, pa.remote.port]).toEqual([pb.remote.port, pb.local.port]);
          await sleep(200);
          const end = Date.now();
          for (const times of [got.a, got.b]) {
            const t = [start, ...times.filter((x) => x >= start && x <= end), end];
            let gap = 0;
            for (let i = 1; i < t.length; i++) gap = Math.max(gap, t[i]! - t[i - 1]!);
            expect(t.length).toBeGreaterThan(10);
            expect(gap).toBeLessThan(150); // a datagram every 10 ms; timers on a loaded machine jitter
          }
          // The new pair carries data both ways, and no connection was left behind (TCP only: the one connection).
          // The pump stops first: a datagram of it still on its way would otherwise be the "next" one.
          clearInterval(pump);
          await sleep(50);
          const toB = nextData(b);
          a.send(Buffer.from('after the restart'));
          expect(await toB).toBe('after the restart');
          if (transports.length === 1) expect(await until(() => handles('TCPSocketWrap') === sockets, 2000)).toBe(true);
          expect(a.state).toBe('completed');
          expect(b.state).toBe('completed');
        } finally {
          clearInterval(pump);
        }
      });
    }
  }
});

describe('IceAgent.dropComponent with ICE-TCP', () => {
  const { make, closeAll } = agentPool();
  afterEach(closeAll);

  it('closes the dropped component\'s listener and connections; component 1 carries on', async () => {
    const a = make({ role: 'controlling', transports: ['tcp'], components: 2 });
    const b = make({ role: 'controlled', transports: ['tcp'], components: 2 });
    await connectPair(a, b);
    expect(await until(() => a.state === 'completed' && b.state === 'completed', 3000)).toBe(true);
    expect(b.getSelectedCandidatePair(2)?.local.transport).toBe('tcp');
    const passive2 = (x: IceAgent) => x.getLocalCandidates().find((c) => c.component === 2 && c.tcpType === 'passive')!.port;
    const ports = { a: passive2(a), b: passive2(b) };
    const servers = handles('TCPServerWrap');
    const sockets = handles('TCPSocketWrap');
    a.dropComponent(2);
    b.dropComponent(2);
    // One listener per agent, and component 2's connection (its two ends), are gone.
    expect(await until(() => handles('TCPServerWrap') === servers - 2 && handles('TCPSocketWrap') === sockets - 2, 2000)).toBe(true);
    expect(await listening(ports.a)).toBe(false);
    expect(await listening(ports.b)).toBe(false);
    const got = nextData(b);
    a.send(Buffer.from('rtcp on rtp'), 1);
    expect(await got).toBe('rtcp on rtp');
    expect(a.state).toBe('completed');
  });
});

describe('IceSdpSession with ICE-TCP and rtcp-mux', () => {
  it('an offer with rtcp-mux over TCP whose answer accepts mux drops component 2, its listener and connections', async () => {
    const { IceSdpSession } = await import('../../src/node/sdp-session.js');
    const app = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 TCP/RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');
    const alice = new IceSdpSession({ ...loopback, transports: ['tcp'] });
    const bob = new IceSdpSession({ ...loopback, transports: ['tcp'] });
    try {
      const offer = await alice.createOffer(app);
      // The offer gathered RTCP candidates over TCP too, in case the answer declines mux.
      const rtcpPassive = /a=candidate:\S+ 2 tcp \d+ 127\.0\.0\.1 (\d+) typ host tcptype passive/.exec(offer);
      expect(rtcpPassive).not.toBeNull();
      const port = Number(rtcpPassive![1]);
      expect(await listening(port)).toBe(true);
      await bob.setRemoteDescription(offer, 'offer');
      const answer = await bob.createAnswer(app);
      expect(answer).toContain('a=rtcp-mux');
      await alice.setRemoteDescription(answer, 'answer');
      const x = alice.agent()!;
      expect(x.components).toBe(1);
      expect(await until(() => x.state === 'connected' || x.state === 'completed', 5000)).toBe(true);
      expect(await listening(port)).toBe(false);
      const got = nextData(bob.agent()!);
      x.send(Buffer.from('mux over tcp'));
      expect(await got).toBe('mux over tcp');
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });
});
