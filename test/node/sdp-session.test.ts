import { readFileSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { IceSdpSession } from '../../src/node/sdp-session.js';
import type { IceAgent } from '../../src/node/ice-agent.js';

const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;
const appSdp = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');

function until(agent: IceAgent, states: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    if (states.includes(agent.state)) return resolve();
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${states.join('/')}, state ${agent.state}`)), 8000);
    agent.on('statechange', (s) => {
      if (states.includes(s)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

async function echoOnce(from: IceAgent, to: IceAgent, text: string): Promise<string> {
  const got = new Promise<string>((resolve) => to.once('data', (d) => resolve(d.toString())));
  expect(from.send(Buffer.from(text))).toBe(true);
  return await got;
}

describe('IceSdpSession (two agents exchanging only SDP)', () => {
  const sessions: IceSdpSession[] = [];
  const sockets: Socket[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    for (const s of sockets.splice(0)) s.close();
  });

  it('connects with full ICE, then restarts through a re-offer', async () => {
    const alice = new IceSdpSession(loopback);
    const bob = new IceSdpSession(loopback);
    sessions.push(alice, bob);
    const offer = await alice.createOffer(appSdp);
    expect(offer).toMatch(/a=ice-ufrag:/);
    expect(offer).toMatch(/a=candidate:/);
    await bob.setRemoteDescription(offer, 'offer');
    const answer = await bob.createAnswer(appSdp);
    await alice.setRemoteDescription(answer, 'answer');
    const a = alice.agent()!;
    const b = bob.agent()!;
    expect(a.role).toBe('controlling');
    expect(b.role).toBe('controlled');
    await Promise.all([until(a, ['connected', 'completed']), until(b, ['connected', 'completed'])]);
    expect(await echoOnce(a, b, 'before restart')).toBe('before restart');

    const oldUfrag = a.getLocalParameters().ufrag;
    alice.restart();
    const reoffer = await alice.createOffer(appSdp);
    expect(a.getLocalParameters().ufrag).not.toBe(oldUfrag);
    expect(reoffer).toContain(`a=ice-ufrag:${a.getLocalParameters().ufrag}`);
    await bob.setRemoteDescription(reoffer, 'offer');
    const reanswer = await bob.createAnswer(appSdp);
    await alice.setRemoteDescription(reanswer, 'answer');
    // Data keeps flowing across the restart (RFC 8445 §9: old pair until the new one is selected).
    expect(await echoOnce(a, b, 'after restart')).toBe('after restart');
  });

  it('trickles candidates through RFC 8840 sdpfrag bodies', async () => {
    const alice = new IceSdpSession({ ...loopback, trickle: 'full' });
    const bob = new IceSdpSession({ ...loopback, trickle: 'full' });
    sessions.push(alice, bob);
    const toBob: string[] = [];
    const toAlice: string[] = [];
    alice.on('sdpfrag', (f) => toBob.push(f));
    bob.on('sdpfrag', (f) => toAlice.push(f));
    const offer = await alice.createOffer(appSdp);
    await bob.setRemoteDescription(offer, 'offer');
    const answer = await bob.createAnswer(appSdp);
    await alice.setRemoteDescription(answer, 'answer');
    await Promise.all([alice.agent()!.gather(), bob.agent()!.gather()]);
    for (const f of toBob.splice(0)) bob.applySdpfrag(f);
    for (const f of toAlice.splice(0)) alice.applySdpfrag(f);
    const a = alice.agent()!;
    const b = bob.agent()!;
    await Promise.all([until(a, ['connected', 'completed']), until(b, ['connected', 'completed'])]);
    expect(await echoOnce(b, a, 'trickled')).toBe('trickled');
  });

  it('an aggressively nominating session does not claim ice2 (RFC 8445 §10)', async () => {
    const s = new IceSdpSession({ ...loopback, nomination: 'aggressive' });
    sessions.push(s);
    const offer = await s.createOffer(appSdp);
    expect(offer).toMatch(/a=ice-ufrag:/);
    expect(offer).not.toMatch(/ice2/);
  });

  it('talks to a peer without ICE by sending to c=/m= and latching (symmetric RTP)', async () => {
    // A plain UDP echo on loopback plays the PBX; its SDP is the fixture's, pointed at the echo's port.
    const echo = createSocket('udp4');
    sockets.push(echo);
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
    echo.on('message', (msg, rinfo) => {
      if (msg[0]! >= 128) echo.send(msg, rinfo.port, rinfo.address);
    });
    const fixture = readFileSync(new URL('../fixtures/sdp/sip-invite-behind-nat.sdp', import.meta.url), 'utf8');
    const port = echo.address().port;
    const pbxOffer = fixture.replace(/c=IN IP4 [0-9.]+/g, 'c=IN IP4 127.0.0.1').replace(/m=audio \d+/, `m=audio ${port}`);
    const session = new IceSdpSession(loopback);
    sessions.push(session);
    const r = await session.setRemoteDescription(pbxOffer, 'offer');
    expect(r.iceMode).toBe('none');
    const answer = await session.createAnswer(appSdp);
    expect(answer).not.toMatch(/a=ice-ufrag/);
    const agent = session.agent()!;
    expect(agent.state).toBe('checking'); // connected once the peer's media arrives (src/without-ice.ts)
    const rtp = Buffer.from([0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 42]);
    const got = new Promise<Buffer>((resolve) => agent.once('data', (d) => resolve(d)));
    expect(agent.send(rtp)).toBe(true);
    expect((await got).equals(rtp)).toBe(true);
    expect(agent.state).toBe('connected');
  });
});
