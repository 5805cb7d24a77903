/**
 * Nomination through SDP, on real sockets bound to 127.0.0.1: the peer's `a=ice-options` must reach the agent, so an
 * agent configured for aggressive nomination falls back to regular nomination facing an `ice2` peer (RFC 8445 §10).
 *
 * Observable: the controlling agent's `pairstatechange` events. Under regular nomination a pair first succeeds
 * without USE-CANDIDATE (not nominated); the nomination is a second check on a pair already succeeded, which emits
 * no state change. Under aggressive nomination every check carries USE-CANDIDATE, so the pair is nominated in the
 * very transaction that makes it succeed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { IceSdpSession, type IceSdpSessionOptions } from '../../src/node/sdp-session.js';
import type { IceCandidatePairState } from '../../src/node/ice-agent.js';
import { connected, loopback } from './agent-helpers.js';

const appSdp = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');

describe('IceSdpSession nomination and the peer ice-options (RFC 8445 §10)', () => {
  const sessions: IceSdpSession[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });

  /** Alice (aggressive, offerer, so controlling) connects to Bob; returns Alice's first `succeeded` pair event. */
  async function firstSucceeded(bobOptions: IceSdpSessionOptions): Promise<IceCandidatePairState> {
    const alice = new IceSdpSession({ ...loopback, nomination: 'aggressive' });
    const bob = new IceSdpSession({ ...loopback, ...bobOptions });
    sessions.push(alice, bob);
    const succeeded: IceCandidatePairState[] = [];
    alice.on('pairstatechange', (p) => {
      if (p.state === 'succeeded') succeeded.push(p);
    });
    const offer = await alice.createOffer(appSdp);
    await bob.setRemoteDescription(offer, 'offer');
    const answer = await bob.createAnswer(appSdp);
    await alice.setRemoteDescription(answer, 'answer');
    await Promise.all([connected(alice.agent()!), connected(bob.agent()!)]);
    expect(alice.agent()!.role).toBe('controlling');
    expect(succeeded.length).toBeGreaterThan(0);
    return succeeded[0]!;
  }

  it('an aggressive agent facing an ice2 answer nominates regularly: its first valid pair is not nominated', async () => {
    const first = await firstSucceeded({});
    expect(first.nominated).toBe(false);
  });

  it('facing a peer without ice2 it keeps nominating aggressively (the observable above is sound)', async () => {
    const first = await firstSucceeded({ nomination: 'aggressive' });
    expect(first.nominated).toBe(true);
  });
});
