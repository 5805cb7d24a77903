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

const ufragOf = (sdp: string) => /a=ice-ufrag:(\S+)/.exec(sdp)![1];

/** RFC 8839 §4.4.1.1.1, §4.4.2.1: IceSdpSession never answers a plain re-offer with new credentials. */
describe('IceSdpSession: restarts belong in offers', () => {
  const sessions: IceSdpSession[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });

  it('restart() while a plain re-offer is pending: the answer keeps the credentials; the next offer restarts', async () => {
    const alice = new IceSdpSession(loopback);
    const bob = new IceSdpSession(loopback);
    sessions.push(alice, bob);
    await bob.setRemoteDescription(await alice.createOffer(appSdp), 'offer');
    const first = await bob.createAnswer(appSdp);
    await alice.setRemoteDescription(first, 'answer');
    const a = alice.agent()!;
    const b = bob.agent()!;
    await Promise.all([until(a, ['completed']), until(b, ['completed'])]);
    const bobUfrag = b.getLocalParameters().ufrag;

    await bob.setRemoteDescription(await alice.createOffer(appSdp), 'offer'); // plain re-offer
    bob.restart();
    const answer = await bob.createAnswer(appSdp);
    expect(ufragOf(answer)).toBe(bobUfrag);
    expect(b.getLocalParameters().ufrag).toBe(bobUfrag);
    await alice.setRemoteDescription(answer, 'answer');
    await new Promise((r) => setTimeout(r, 300));
    expect(a.state).toBe('completed');
    expect(b.state).toBe('completed');

    // The restart goes out with Bob's next offer.
    const reoffer = await bob.createOffer(appSdp);
    expect(ufragOf(reoffer)).not.toBe(bobUfrag);
    expect(ufragOf(reoffer)).toBe(b.getLocalParameters().ufrag);
    await alice.setRemoteDescription(reoffer, 'offer');
    await bob.setRemoteDescription(await alice.createAnswer(appSdp), 'answer');
    await new Promise((r) => setTimeout(r, 500));
    await Promise.all([until(a, ['completed']), until(b, ['completed'])]);
    expect(a.getSelectedCandidatePair()!.local.port).toBe(b.getSelectedCandidatePair()!.remote.port);
  });
});
