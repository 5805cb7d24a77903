/**
 * IceSdpSession against a browser-shaped peer, on real sockets bound to 127.0.0.1 only. The "browser" is a second
 * IceSdpSession whose offers are rewritten into Chrome's unified-plan layout (BUNDLE over two m-lines, a=mid,
 * rtcp-mux, a=rtcp:9 IN IP4 0.0.0.0, media-level credentials, ice-options:trickle, msid/extmap/ssrc lines, no
 * end-of-candidates); the answers going back to it are cut down to its single m-line.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentState } from '../../src/checklist/types.js';
import { IceSdpSession } from '../../src/node/sdp-session.js';
import type { IceAgent } from '../../src/node/ice-agent.js';
import { readIceDescription } from '../../src/sip-offer-answer/index.js';
import { formatCandidate } from '../../src/candidates/grammar.js';

const loopback = { includeLoopback: true, addressFilter: (a: string) => a === '127.0.0.1' } as const;

/** The browser side's own SDP: one audio section, multiplexed RTCP. */
const BROWSER_APP = ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=audio 9 RTP/AVP 111', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=rtcp-mux', 'a=sendrecv', ''].join('\r\n');

/** The gateway's answer SDP for a two-section BUNDLE offer (what a WebRTC-SIP gateway hands to IceSdpSession). */
const GATEWAY_APP = [
  'v=0',
  'o=- 4242 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=msid-semantic: WMS',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111',
  'c=IN IP4 0.0.0.0',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:active',
  'a=mid:0',
  'a=sendrecv',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'm=video 9 UDP/TLS/RTP/SAVPF 96',
  'c=IN IP4 0.0.0.0',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:active',
  'a=mid:1',
  'a=recvonly',
  'a=rtcp-mux',
  'a=rtpmap:96 VP8/90000',
  '',
].join('\r\n');

/**
 * Rewrites an icewire offer into Chrome's layout. `version` is the o= session version (RFC 3264 §8: bumped in every
 * re-offer). `rtcp: 'rtp'` writes a=rtcp with the RTP address and port as older Chrome and SIP.js did; `trickle`
 * false drops ice-options (a pjsip-style re-offer).
 */
function chromeLayout(offer: string, version: number, opts: { rtcp?: 'placeholder' | 'rtp'; trickle?: boolean } = {}): string {
  const d = readIceDescription(offer);
  const m = d.media[0]!;
  const ufrag = m.ufrag!;
  const pwd = m.pwd!;
  const address = m.connection!;
  const rtcp = opts.rtcp === 'rtp' ? `a=rtcp:${m.port} IN IP4 ${address}` : 'a=rtcp:9 IN IP4 0.0.0.0';
  const ice = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, ...(opts.trickle === false ? [] : ['a=ice-options:trickle'])];
  const dtls = ['a=fingerprint:sha-256 3A:91:5C:0D:E2:77:14:B8:6F:29:A0:C3:58:DE:41:97:0B:6E:F2:83:1C:5A:D9:64:B7:20:8F:E3:4C:19:A6:72', 'a=setup:actpass'];
  return [
    'v=0',
    `o=- 7308201745362901337 ${version} IN IP4 127.0.0.1`,
    's=-',
    't=0 0',
    'a=group:BUNDLE 0 1',
    'a=extmap-allow-mixed',
    'a=msid-semantic: WMS s1',
    `m=audio ${m.port} UDP/TLS/RTP/SAVPF 111 0`,
    `c=IN IP4 ${address}`,
    rtcp,
    ...m.candidates.map((c) => `a=${formatCandidate({ ...c, extensions: [['generation', '0'], ['network-id', '1']] })}`),
    ...ice,
    ...dtls,
    'a=mid:0',
    'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
    'a=sendrecv',
    'a=msid:s1 t1',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=rtpmap:0 PCMU/8000',
    'a=ssrc:1001 cname:q7cU1Xh3bO0e9FhJ',
    'a=ssrc:1001 msid:s1 t1',
    `m=video ${m.port} UDP/TLS/RTP/SAVPF 96`,
    `c=IN IP4 ${address}`,
    rtcp,
    ...ice,
    ...dtls,
    'a=mid:1',
    'a=sendrecv',
    'a=msid:s1 t2',
    'a=rtcp-mux',
    'a=rtcp-rsize',
    'a=rtpmap:96 VP8/90000',
    'a=ssrc:2002 cname:q7cU1Xh3bO0e9FhJ',
    '',
  ].join('\r\n');
}

/** The gateway's two-section answer, cut down to the browser side's single m-line. */
function firstSectionOnly(answer: string): string {
  const [head, first] = answer.split(/\r\n(?=m=)/);
  return `${head!.replace(/a=group:BUNDLE[^\r\n]*\r\n/, '')}\r\n${first!}\r\n`;
}

function until(agent: IceAgent, states: AgentState[]): Promise<void> {
  return new Promise((resolve, reject) => {
    if (states.includes(agent.state)) return resolve();
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${states.join('/')}, state ${agent.state}`)), 8000);
    const on = (s: AgentState) => {
      if (!states.includes(s)) return;
      clearTimeout(t);
      agent.off('statechange', on);
      resolve();
    };
    agent.on('statechange', on);
  });
}

function nextSelection(agent: IceAgent): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout waiting for a selected pair')), 8000);
    agent.once('selectedcandidatepairchange', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function echoOnce(from: IceAgent, to: IceAgent, text: string): Promise<string> {
  const got = new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`"${text}" not received`)), 5000);
    to.once('data', (d) => {
      clearTimeout(t);
      resolve(d.toString());
    });
  });
  expect(from.send(Buffer.from(text))).toBe(true);
  return await got;
}

const pairKey = (a: IceAgent) => {
  const p = a.getSelectedCandidatePair();
  return p ? `${p.local.address}:${p.local.port}>${p.remote.address}:${p.remote.port}` : undefined;
};

describe('IceSdpSession answering a Chrome-layout offer on loopback', () => {
  const sessions: IceSdpSession[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });

  it('connects, survives re-INVITEs without ICE changes, and restarts on new ufrag/pwd', async () => {
    const browser = new IceSdpSession(loopback);
    const gateway = new IceSdpSession(loopback);
    sessions.push(browser, gateway);
    const warnings: string[] = [];
    gateway.on('warning', (w) => warnings.push(w));

    // Initial offer/answer.
    const offer1 = chromeLayout(await browser.createOffer(BROWSER_APP), 2);
    const r1 = await gateway.setRemoteDescription(offer1, 'offer');
    expect(r1).toMatchObject({ iceMode: 'ice', role: 'controlled', restart: false, warnings: [] });
    expect(gateway.offerAnswer.transports()).toMatchObject([{ transportIndex: 0, mids: ['0', '1'], components: 1, mode: 'ice' }]);
    const answer1 = await gateway.createAnswer(GATEWAY_APP);
    const ad = readIceDescription(answer1);
    expect(ad.bundleGroups).toEqual([['0', '1']]);
    expect(ad.media.map((m) => [m.mid, m.candidates.length > 0, m.port])).toEqual([
      ['0', true, ad.media[0]!.port],
      ['1', false, ad.media[0]!.port],
    ]);
    expect(answer1).toContain('\r\na=msid-semantic: WMS\r\n');
    await browser.setRemoteDescription(firstSectionOnly(answer1), 'answer');

    const b = browser.agent()!;
    const g = gateway.agent()!;
    expect(gateway.agent(1)).toBeUndefined(); // one agent for the BUNDLE group
    expect([b.role, g.role]).toEqual(['controlling', 'controlled']);
    await Promise.all([until(b, ['completed']), until(g, ['connected', 'completed'])]);
    expect(await echoOnce(b, g, 'first call')).toBe('first call');
    const gUfrag = g.getLocalParameters().ufrag;
    const selected = pairKey(g);
    expect(selected).toBeDefined();

    // re-INVITE (hold/unhold, codec change): same ufrag/pwd, same candidates, o= version bumped.
    const states: AgentState[] = [];
    b.on('statechange', (s) => states.push(s));
    g.on('statechange', (s) => states.push(s));
    await browser.createOffer(BROWSER_APP); // the browser's session enters have-local-offer; Chrome's text goes out
    const r2 = await gateway.setRemoteDescription(offer1.replace(' 2 IN IP4', ' 3 IN IP4'), 'offer');
    expect(r2).toMatchObject({ restart: false, warnings: [], iceMode: 'ice' });
    expect(r2.streams[0]!.newCandidates).toEqual([]);
    const answer2 = await gateway.createAnswer(GATEWAY_APP.replace('4242 2', '4242 3'));
    expect(readIceDescription(answer2).media[0]!.ufrag).toBe(gUfrag);
    await browser.setRemoteDescription(firstSectionOnly(answer2), 'answer');
    expect(gateway.agent()).toBe(g);
    expect(g.getLocalParameters().ufrag).toBe(gUfrag);
    expect(await echoOnce(g, b, 'after re-INVITE')).toBe('after re-INVITE');
    expect(pairKey(g)).toBe(selected);

    // A pjsip-style re-INVITE that drops ice-options:trickle is tolerated: a warning, no restart, no disturbance.
    // The browser's re-offer lists what it lists after nomination; Chrome's layout without the ice-options line.
    const offer3 = chromeLayout(await browser.createOffer(BROWSER_APP), 4, { trickle: false });
    const r3 = await gateway.setRemoteDescription(offer3, 'offer');
    expect(r3).toMatchObject({ restart: false });
    // One warning per m-section of the BUNDLE group.
    expect(warnings).toEqual([expect.stringMatching(/m-section 0 .* without an ICE restart/), expect.stringMatching(/m-section 1 .* without an ICE restart/)]);
    await browser.setRemoteDescription(firstSectionOnly(await gateway.createAnswer(GATEWAY_APP)), 'answer');
    expect(await echoOnce(b, g, 'after pjsip re-INVITE')).toBe('after pjsip re-INVITE');
    expect(states.filter((s) => s !== 'completed' && s !== 'connected')).toEqual([]);
    expect(pairKey(g)).toBe(selected);

    // UPDATE with new ufrag/pwd: an ICE restart on both sides; the older a=rtcp layout is no ICE mismatch.
    browser.restart();
    const offer4 = chromeLayout(await browser.createOffer(BROWSER_APP), 5, { rtcp: 'rtp' });
    const reselected = Promise.all([nextSelection(b), nextSelection(g)]);
    const r4 = await gateway.setRemoteDescription(offer4, 'offer');
    expect(r4).toMatchObject({ restart: true, iceMode: 'ice', warnings: [] });
    expect(r4.streams.map((s) => s.mode)).toEqual(['ice', 'ice']);
    const answer4 = await gateway.createAnswer(GATEWAY_APP.replace('4242 2', '4242 5'));
    const newUfrag = readIceDescription(answer4).media[0]!.ufrag;
    expect(newUfrag).not.toBe(gUfrag);
    expect(g.getLocalParameters().ufrag).toBe(newUfrag);
    await browser.setRemoteDescription(firstSectionOnly(answer4), 'answer');
    await reselected;
    expect(await echoOnce(b, g, 'after restart')).toBe('after restart');
    expect(await echoOnce(g, b, 'and back')).toBe('and back');
  });

  it('offers a non-RTP section without a=rtcp-mux (a data channel) with one component, as the answerer counts it', async () => {
    const app = [
      'v=0',
      'o=- 1 2 IN IP4 127.0.0.1',
      's=-',
      't=0 0',
      'a=group:BUNDLE 0',
      'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
      'c=IN IP4 0.0.0.0',
      'a=mid:0',
      'a=sctp-port:5000',
      '',
    ].join('\r\n');
    const alice = new IceSdpSession(loopback);
    const bob = new IceSdpSession(loopback);
    sessions.push(alice, bob);
    const offer = await alice.createOffer(app);
    expect(readIceDescription(offer).media[0]!.candidates.every((c) => c.component === 1)).toBe(true);
    await bob.setRemoteDescription(offer, 'offer');
    expect(bob.offerAnswer.transports()[0]!.components).toBe(1);
    await alice.setRemoteDescription(await bob.createAnswer(app), 'answer');
    const a = alice.agent()!;
    const b = bob.agent()!;
    await Promise.all([until(a, ['connected', 'completed']), until(b, ['connected', 'completed'])]);
    expect(await echoOnce(a, b, 'sctp would go here')).toBe('sctp would go here');
  });
});
