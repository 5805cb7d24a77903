/**
 * A peer without ICE on real loopback sockets, through IceSdpSession: plain dgram sockets play a SIP phone's RTP and
 * RTCP ports (and a NAT mapping, and a stranger). Short timers keep the run under two seconds.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { IceSdpSession } from '../../src/node/sdp-session.js';
import type { IceAgent } from '../../src/node/ice-agent.js';

const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;
const appSdp = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 RTP/AVP 0 101', 'c=IN IP4 0.0.0.0', 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv', ''].join(
  '\r\n',
);
const rtpPacket = (seq: number) => Buffer.from([0x80, 0x00, 0x00, seq & 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0xd5, 0xd5]);

interface Port {
  readonly socket: Socket;
  readonly port: number;
  readonly got: { msg: Buffer; from: RemoteInfo }[];
}

function until(agent: IceAgent, state: string, ms = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (agent.state === state) return resolve();
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${state}, state ${agent.state}`)), ms);
    const on = (s: string) => {
      if (s !== state) return;
      clearTimeout(t);
      agent.off('statechange', on);
      resolve();
    };
    agent.on('statechange', on);
  });
}

async function waitFor(f: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('IceSdpSession facing a peer without ICE (loopback)', () => {
  const sessions: IceSdpSession[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    for (const s of sockets.splice(0)) s.close();
  });

  async function port(): Promise<Port> {
    const socket = createSocket('udp4');
    sockets.push(socket);
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    const got: Port['got'] = [];
    socket.on('message', (msg, from) => got.push({ msg, from }));
    return { socket, port: socket.address().port, got };
  }

  async function call() {
    const phoneRtp = await port();
    const phoneRtcp = await port();
    // The phone's offer: no ICE, RTCP on an explicit a=rtcp port (RFC 3605), payload type 127 in use.
    const offer = [
      'v=0',
      'o=phone 1 1 IN IP4 127.0.0.1',
      's=call',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      `m=audio ${phoneRtp.port} RTP/AVP 0 127`,
      'a=rtpmap:127 telephone-event/8000',
      `a=rtcp:${phoneRtcp.port}`,
      'a=sendrecv',
      '',
    ].join('\r\n');
    const session = new IceSdpSession({
      ...loopback,
      withoutIce: { keepaliveIntervalMs: 150, silenceTimeoutMs: 400, relatchSilenceMs: 150, relatchPackets: 3 },
    });
    sessions.push(session);
    const r = await session.setRemoteDescription(offer, 'offer');
    expect(r.iceMode).toBe('none');
    await session.createAnswer(appSdp);
    const agent = session.agent()!;
    const ours = agent.getLocalCandidates().find((c) => c.component === 1)!;
    return { session, agent, phoneRtp, phoneRtcp, ours };
  }

  it('sends RTP keepalives with a payload type neither side uses, and RTCP ones on the RTCP port', async () => {
    const { agent, phoneRtp, phoneRtcp } = await call();
    expect(agent.state).toBe('checking');
    await waitFor(() => phoneRtp.got.length >= 2 && phoneRtcp.got.length >= 1);
    const [a, b] = phoneRtp.got.map((g) => g.msg);
    // RFC 6263 §4.6: RTP v2, no marker, no payload, an unnegotiated dynamic type (127 is the phone's, 101 ours).
    expect([a!.length, a![0], a![1]]).toEqual([12, 0x80, 126]);
    expect(b!.readUInt16BE(2)).toBe((a!.readUInt16BE(2) + 1) & 0xffff);
    expect(b!.readUInt32BE(8)).toBe(a!.readUInt32BE(8));
    const rtcp = phoneRtcp.got[0]!.msg;
    expect([rtcp[0], rtcp[1], rtcp[8], rtcp[9]]).toEqual([0x80, 201, 0x81, 202]); // RR, then SDES
    expect(rtcp.readUInt32BE(4)).toBe(a!.readUInt32BE(8));
    // No STUN goes to a peer that does not speak it.
    for (const g of [...phoneRtp.got, ...phoneRtcp.got]) expect(g.msg[0]! >> 6).toBe(2);
  });

  it('latches on to the first source, drops a stranger, returns to the signalled address when it speaks', async () => {
    const { session, agent, phoneRtp, ours } = await call();
    const mapping = await port(); // the phone as seen through a NAT
    const stranger = await port();
    const latched: unknown[] = [];
    session.on('latched', (info, index) => latched.push({ ...info, index }));
    const data: number[] = [];
    agent.on('data', (_d, _c, from) => data.push(from.port));

    mapping.socket.send(rtpPacket(1), ours.port, '127.0.0.1');
    await until(agent, 'connected');
    expect(latched).toEqual([
      { component: 1, remote: { address: '127.0.0.1', port: mapping.port }, previous: { address: '127.0.0.1', port: phoneRtp.port }, reason: 'first-packet', index: 0 },
    ]);
    expect(agent.send(rtpPacket(2))).toBe(true);
    await waitFor(() => mapping.got.some((g) => g.msg.length === 14));

    for (let i = 0; i < 2; i++) stranger.socket.send(rtpPacket(10 + i), ours.port, '127.0.0.1');
    mapping.socket.send(rtpPacket(3), ours.port, '127.0.0.1'); // keeps the latched source alive
    await waitFor(() => data.length === 2);
    await waitFor(() => agent.getStats()!.dropped['no-ice-other-source'] === 2);
    expect(data).toEqual([mapping.port, mapping.port]);

    phoneRtp.socket.send(rtpPacket(4), ours.port, '127.0.0.1');
    await waitFor(() => latched.length === 2);
    expect(latched[1]).toMatchObject({ remote: { port: phoneRtp.port }, reason: 'signalled' });
    const before = phoneRtp.got.length;
    agent.send(rtpPacket(5));
    await waitFor(() => phoneRtp.got.length > before);
    expect(phoneRtp.got.at(-1)!.msg.length).toBe(14);
  });

  it('sends no RTP keepalive on a transport that does not carry RTP (T.38 over UDPTL)', async () => {
    const fax = await port();
    const offer = ['v=0', 'o=gw 1 1 IN IP4 127.0.0.1', 's=fax', 'c=IN IP4 127.0.0.1', 't=0 0', `m=image ${fax.port} udptl t38`, ''].join('\r\n');
    const session = new IceSdpSession({ ...loopback, withoutIce: { keepaliveIntervalMs: 100 } });
    sessions.push(session);
    await session.setRemoteDescription(offer, 'offer');
    await session.createAnswer(['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=image 9 udptl t38', 'c=IN IP4 0.0.0.0', ''].join('\r\n'));
    expect(session.agent()!.getStats()!.withoutIce).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(fax.got).toEqual([]);
  });

  it('connected with media, disconnected when the phone falls silent, connected again when it talks', async () => {
    const { agent, phoneRtp, ours } = await call();
    const states: string[] = [];
    agent.on('statechange', (s) => states.push(s));
    phoneRtp.socket.send(rtpPacket(1), ours.port, '127.0.0.1');
    await until(agent, 'connected');
    const t0 = Date.now();
    await until(agent, 'disconnected');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350); // silenceTimeoutMs 400, timer granularity aside
    phoneRtp.socket.send(rtpPacket(2), ours.port, '127.0.0.1');
    await until(agent, 'connected');
    expect(states).toEqual(['connected', 'disconnected', 'connected']);
  });
});
