/**
 * Several Chromium (libwebrtc) peer connections over ICE-TCP to ICE-lite icewire agents that share ONE `IceTcpMux`
 * listening port, on the loopback interface of a network namespace the test creates, where an nftables rule (inside
 * that namespace only) drops every UDP datagram, as in `icewire-chromium-tcp.test.ts`: ICE can only succeed over TCP.
 * Four pages of one browser each offer a data channel; a lite `IceSdpSession` per page answers with one passive TCP
 * candidate, the mux port. Each browser's active candidate connects to that port; the mux hands each connection to
 * the agent its first check names, so every agent selects its own browser's connection, and the browser's DTLS
 * (framed, RFC 4571) reaches that agent only.
 *
 * Skipped with a warning when Chromium, playwright-core, `ip netns` or `nft` is missing; fails under CI instead.
 * Bounded: one browser, one child, about ten seconds.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { checkChromium, checkNft, ChromiumPeer, dropUdp, LoopbackNamespace } from './chromium.js';
import { answerEveryPage, candidates, expectEachPeerOnItsOwnAgent, IcewireMuxPeer } from './chromium-mux.js';

const base = checkChromium();
const availability = base.ok ? checkNft() : base;
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium TCP mux test skipped: ${availability.ok ? '' : availability.reason}`);

/** Browser peer connections on the one mux port. */
const PEERS = 4;

let ns: LoopbackNamespace | undefined;
let browser: ChromiumPeer | undefined;
let icewire: IcewireMuxPeer | undefined;
afterAll(async () => {
  await Promise.allSettled([browser?.close(), icewire?.close()]);
  ns?.remove();
});

describe.skipIf(!run)('interop: Chromium peer connections over ICE-TCP to lite icewire agents on one TCP mux port, UDP dropped', () => {
  it('Chromium, playwright-core, ip netns and nft are available', () => expect(availability.ok ? 'ok' : availability.reason).toBe('ok'));

  it(`${PEERS} browser peer connections, one TCP mux port: each connects to its own agent, DTLS reaches the right one`, async () => {
    ns = LoopbackNamespace.create();
    dropUdp(ns);
    const [b, w] = await Promise.allSettled([ChromiumPeer.launch(ns), IcewireMuxPeer.start(ns, 25_000, 'tcp')]);
    if (b.status === 'fulfilled') browser = b.value;
    if (w.status === 'fulfilled') icewire = w.value;
    if (b.status === 'rejected') throw b.reason;
    if (w.status === 'rejected') throw w.reason;
    const mux = icewire!;
    const pages = [browser!, ...(await Promise.all(Array.from({ length: PEERS - 1 }, () => browser!.newPage())))];

    const answers = await answerEveryPage(pages, mux);
    // Every answer is lite and names the one mux port, in its candidates and its m= line.
    for (const answer of answers) {
      expect(answer).toMatch(/^a=ice-lite\r?$/m);
      expect(candidates(answer)).toEqual([{ transport: 'tcp', address: '127.0.0.1', port: mux.port, type: 'host', tcpType: 'passive' }]);
    }
    expect(new Set(answers.map((a) => /^a=ice-ufrag:(\S+)/m.exec(a)?.[1])).size).toBe(PEERS);

    const { report, context } = await expectEachPeerOnItsOwnAgent(pages, mux, 15_000);
    // Every connection the browsers opened reached an agent: none was closed by the mux.
    expect(Object.values(report.dropped).reduce((a, b) => a + b, 0), context).toBe(0);
    expect(report.routed, context).toBeGreaterThan(0);
  }, 30_000);
});
