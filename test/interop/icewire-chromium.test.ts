/**
 * icewire against a real browser ICE stack: Chromium's libwebrtc (Debian `chromium`, driven by playwright-core), on
 * the loopback interface of a network namespace the test creates (see test/interop/chromium.ts for why). The
 * browser negotiates a data channel by SDP offer/answer with an `IceSdpSession`; only ICE is checked: Chromium then
 * waits for or starts DTLS, which icewire does not do, so its `connectionState` stays `connecting` (and would fail
 * later), but `iceConnectionState` and the SCTP transport's `RTCIceTransport.state` reach `connected`. Both
 * directions are run (browser offers and controls; icewire offers and controls); each side's selected pair must be
 * the other's host candidate, and both sides' consent checks (RFC 7675) must be answered on it.
 * `ICEWIRE_CHROMIUM_DEBUG=1` prints both descriptions, the browser's state sequence and icewire's events.
 *
 * Skipped with a warning when Chromium, playwright-core or `ip netns` is missing; fails under CI instead.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { checkChromium, ChromiumPeer, IcewirePeer, LoopbackNamespace, type BrowserStateChange, type IcewirePairCounters } from './chromium.js';

const availability = checkChromium();
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium interop test skipped: ${availability.ok ? '' : availability.reason}`);

/** A syntactically valid sha-256 fingerprint: the test never reaches DTLS, so no certificate stands behind it. */
const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');

/** A WebRTC data-channel section (RFC 8841) as an application would write it; icewire adds the ICE attributes. */
function dataChannelSdp(mid: string, setup: 'active' | 'actpass'): string {
  return [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    'a=msid-semantic: WMS',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    `a=mid:${mid}`,
    `a=setup:${setup}`,
    `a=fingerprint:sha-256 ${FINGERPRINT}`,
    'a=sctp-port:5000',
    'a=max-message-size:262144',
    '',
  ].join('\r\n');
}

function udpCandidates(sdp: string): { address: string; port: number }[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host/gim)].map((m) => ({ address: m[1]!, port: Number(m[2]) }));
}

const isUp = (s: string): boolean => s === 'connected' || s === 'completed';

let ns: LoopbackNamespace | undefined;
let browser: ChromiumPeer | undefined;
let icewire: IcewirePeer | undefined;
afterEach(async () => {
  await Promise.allSettled([browser?.close(), icewire?.close()]);
  ns?.remove();
  browser = undefined;
  icewire = undefined;
  ns = undefined;
});

async function setUp(): Promise<{ browser: ChromiumPeer; icewire: IcewirePeer }> {
  ns = LoopbackNamespace.create();
  const [b, w] = await Promise.allSettled([ChromiumPeer.launch(ns), IcewirePeer.start(ns)]);
  // Keep whichever started, so that afterEach closes it even when the other failed.
  if (b.status === 'fulfilled') browser = b.value;
  if (w.status === 'fulfilled') icewire = w.value;
  if (b.status === 'rejected') throw b.reason;
  if (w.status === 'rejected') throw w.reason;
  return { browser: browser!, icewire: icewire! };
}

/**
 * The checks common to both directions, once each side reports ICE up: each side's selected pair points at the
 * other side's host candidate on 127.0.0.1, and icewire answered the browser's checks on that pair.
 */
async function expectIceUp(b: ChromiumPeer, w: IcewirePeer, history: readonly BrowserStateChange[]): Promise<void> {
  const ice = history.filter((h) => h.kind === 'ice').map((h) => h.state);
  expect(ice[0]).toBe('checking');
  expect(ice.some(isUp)).toBe(true);
  // RTCIceTransport.statechange fires just after iceconnectionstatechange.
  const transportStates = async () => (await b.history()).filter((h) => h.kind === 'transport').map((h) => h.state);
  await eventually(async () => (await transportStates()).some(isUp), 2_000);
  expect(await transportStates(), JSON.stringify(await b.history())).toContain('connected');
  expect(w.states().some(isUp)).toBe(true);

  // Each side reports `connected` as soon as it has one valid pair; the other side's checks on that pair may still be
  // in flight then (the controlled side's triggered check, RFC 8445 §7.3.1.4): wait a bounded moment for both.
  const settled = async () => {
    const pair = await b.selectedPair();
    const onSelected = w.selected() ? await selectedPairStats(w) : undefined;
    return pair !== undefined && pair.state === 'succeeded' && pair.responsesReceived > 0 && onSelected !== undefined && onSelected.requestsReceived > 0;
  };
  await eventually(settled, 5_000);

  const pair = await b.selectedPair();
  expect(pair).toBeDefined();
  const selected = w.selected();
  expect(selected).toBeDefined();
  expect(selected!.local.address).toBe('127.0.0.1');
  expect(selected!.remote).toMatchObject({ address: pair!.local.address, port: pair!.local.port, transport: 'udp' });
  expect(pair!.remote).toMatchObject({ address: selected!.local.address, port: selected!.local.port });
  expect(pair!.state).toBe('succeeded');
  expect(pair!.responsesReceived).toBeGreaterThan(0);

  const onSelected = await selectedPairStats(w);
  expect(onSelected.requestsReceived).toBeGreaterThan(0);
  expect(onSelected.responsesSent).toBeGreaterThan(0);
  expect(onSelected.valid).toBe(true);
}

/** Polls `cond` every 100 ms until it holds or `ms` pass (the assertions after it say what is wrong). */
async function eventually(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

async function selectedPairStats(w: IcewirePeer): Promise<IcewirePairCounters> {
  const selected = w.selected();
  const stats = await w.stats();
  const p = stats?.pairs.find(
    (x) => x.local.port === selected?.local.port && x.remote.address === selected.remote.address && x.remote.port === selected.remote.port,
  );
  if (!p) throw new Error(`no stats for the selected pair: ${JSON.stringify(stats)}`);
  return p;
}

/**
 * After selection, the browser keeps checking the selected pair (RFC 7675 consent freshness; libwebrtc counts them
 * as consentRequestsSent) and icewire sends its own consent checks (every 4-6 s: RFC 7675 §5.1 randomises Tc = 5 s, and icewire refuses less): both must get answered.
 */
async function expectConsentTraffic(b: ChromiumPeer, w: IcewirePeer): Promise<void> {
  const before = await selectedPairStats(w);
  const deadline = Date.now() + 9_000;
  let now = before;
  while (Date.now() < deadline && !(now.requestsReceived > before.requestsReceived && now.responsesReceived > before.responsesReceived)) {
    await new Promise((r) => setTimeout(r, 250));
    now = await selectedPairStats(w);
  }
  expect(now.requestsReceived, 'browser consent checks received by icewire').toBeGreaterThan(before.requestsReceived);
  expect(now.responsesSent).toBeGreaterThan(before.responsesSent);
  expect(now.responsesReceived, 'icewire consent checks answered by the browser').toBeGreaterThan(before.responsesReceived);
  const pair = await b.selectedPair();
  expect(pair!.consentRequestsSent).toBeGreaterThan(0);
  expect(pair!.requestsReceived).toBeGreaterThanOrEqual(now.requestsSent);
  // Nothing the browser sent was dropped as malformed or unauthenticated.
  const stats = await w.stats();
  expect(Object.keys(stats!.dropped).filter((k) => k.startsWith('request-') || k.startsWith('response-'))).toEqual([]);
}

/** ICEWIRE_CHROMIUM_DEBUG=1 prints both descriptions and every state change (for reports). */
async function debugDump(b: ChromiumPeer, w: IcewirePeer, offer: string, answer: string): Promise<void> {
  if (!process.env.ICEWIRE_CHROMIUM_DEBUG) return;
  const dump = { chromium: b.version(), offer, answer, browser: await b.history(), pair: await b.selectedPair(), icewire: w.messages };
  console.log(JSON.stringify(dump, null, 1));
}

describe.skipIf(!run)('interop: icewire <-> Chromium (libwebrtc) on loopback', () => {
  it('Chromium, playwright-core and ip netns are available', () => expect(availability.ok ? 'ok' : availability.reason).toBe('ok'));

  it('browser offers (controlling), icewire answers (controlled): ICE connects on both sides', async () => {
    const { browser: b, icewire: w } = await setUp();
    const offer = await b.createOffer();
    const mid = /^a=mid:(\S+)/m.exec(offer)?.[1];
    expect(mid).toBeDefined();
    // The browser only sees lo in the namespace.
    expect(udpCandidates(offer).length).toBeGreaterThan(0);
    expect(udpCandidates(offer).every((c) => c.address === '127.0.0.1')).toBe(true);

    const answer = await w.answer(offer, dataChannelSdp(mid!, 'active'));
    expect(answer).toMatch(/^a=ice-ufrag:/m);
    expect(udpCandidates(answer).map((c) => c.address)).toEqual(['127.0.0.1']);
    await b.setAnswer(answer);

    const [history] = await Promise.all([b.waitIceConnected(15_000), w.waitUp(15_000)]);
    await expectIceUp(b, w, history);
    // The browser controls and nominates (RFC 8445 §8.1.1): icewire completes.
    await w.waitState('completed', 5_000);
    expect((await w.stats())!.role).toBe('controlled');
    expect((await b.selectedPair())!.nominated).toBe(true);
    expect(w.selected()!.remote.type).toBe('host');
    await expectConsentTraffic(b, w);
    await debugDump(b, w, offer, answer);
  });

  it('icewire offers (controlling), browser answers (controlled): ICE connects on both sides', async () => {
    const { browser: b, icewire: w } = await setUp();
    const offer = await w.offer(dataChannelSdp('0', 'actpass'));
    // One component: a data channel carries no RTP, so no RTCP component, rtcp-mux or not.
    expect(udpCandidates(offer).map((c) => c.address)).toEqual(['127.0.0.1']);
    expect(offer).toMatch(/^a=candidate:\S+ 1 udp /m);
    const answer = await b.createAnswer(offer);
    expect(answer).toMatch(/^a=mid:0\r?$/m);
    expect(udpCandidates(answer).length).toBeGreaterThan(0);
    expect(udpCandidates(answer).every((c) => c.address === '127.0.0.1')).toBe(true);
    await w.remoteAnswer(answer);

    const [history] = await Promise.all([b.waitIceConnected(15_000), w.waitUp(15_000)]);
    await expectIceUp(b, w, history);
    // icewire controls and nominates with regular nomination (RFC 8445 §8.1.1): both sides see it nominated.
    await w.waitState('completed', 5_000);
    expect((await w.stats())!.role).toBe('controlling');
    await eventually(async () => (await b.selectedPair())?.nominated === true, 5_000);
    expect((await b.selectedPair())!.nominated).toBe(true);
    const stats = await selectedPairStats(w);
    expect(stats.nominated).toBe(true);
    await expectConsentTraffic(b, w);
    await debugDump(b, w, offer, answer);
  });
});
