/** IceSdpSession on an IceUdpMux: a SIP gateway running every call on one port (loopback only). */
import { afterEach, describe, expect, it } from 'vitest';
import type { IceAgent } from '../../src/node/ice-agent.js';
import { IceSdpSession } from '../../src/node/sdp-session.js';
import { IceUdpMux } from '../../src/node/udp-mux.js';

const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;
const appSdp = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');

function up(agent: IceAgent): Promise<void> {
  return new Promise((resolve, reject) => {
    if (agent.state === 'connected' || agent.state === 'completed') return resolve();
    const t = setTimeout(() => reject(new Error(`not up, state ${agent.state}`)), 8000);
    agent.on('statechange', (s) => {
      if (s === 'connected' || s === 'completed') {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

describe('IceSdpSession with udpMux', () => {
  const sessions: IceSdpSession[] = [];
  let mux: IceUdpMux | undefined;
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    await mux?.close();
  });

  it('ten calls answered on one port (lite), media both ways, a caller restart keeps the port', async () => {
    const m = await IceUdpMux.bind({ addresses: ['127.0.0.1'] });
    mux = m;
    const port = m.addresses[0]!.port;
    const calls = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const caller = new IceSdpSession(loopback);
        const gateway = new IceSdpSession({ udpMux: m, lite: true });
        sessions.push(caller, gateway);
        await gateway.setRemoteDescription(await caller.createOffer(appSdp), 'offer');
        const answer = await gateway.createAnswer(appSdp);
        expect(answer).toContain(`m=audio ${port} `);
        expect(answer).not.toMatch(/a=rtcp:/);
        await caller.setRemoteDescription(answer, 'answer');
        await Promise.all([up(caller.agent()!), up(gateway.agent()!)]);
        return { caller, gateway };
      }),
    );
    expect(m.agentCount).toBe(10);
    const heard = await Promise.all(
      calls.map(({ caller, gateway }, i) => {
        const got = new Promise<string>((r) => gateway.agent()!.once('data', (d) => r(d.toString())));
        caller.agent()!.send(Buffer.from(`\x80call${i}`));
        return got;
      }),
    );
    expect(heard).toEqual(calls.map((_c, i) => `\x80call${i}`));
    // Call 0's caller restarts through a re-offer: the gateway answers on the same port.
    const { caller, gateway } = calls[0]!;
    caller.restart();
    await gateway.setRemoteDescription(await caller.createOffer(appSdp), 'offer');
    const reanswer = await gateway.createAnswer(appSdp);
    expect(reanswer).toContain(`m=audio ${port} `);
    await caller.setRemoteDescription(reanswer, 'answer');
    await new Promise((r) => setTimeout(r, 300));
    const got = new Promise<string>((r) => gateway.agent()!.once('data', (d) => r(d.toString())));
    caller.agent()!.send(Buffer.from('\x80after-restart'));
    expect(await got).toBe('\x80after-restart');
    await gateway.close();
    expect(m.agentCount).toBe(9);
  }, 30_000);

  it('an offer from a session on a mux carries one component (RTCP on RTP)', async () => {
    mux = await IceUdpMux.bind({ addresses: ['127.0.0.1'] });
    const s = new IceSdpSession({ udpMux: mux });
    sessions.push(s);
    const offer = await s.createOffer(appSdp);
    expect(offer).not.toMatch(/a=candidate:\S+ 2 /);
    expect(s.agent()!.components).toBe(1);
  });
});
