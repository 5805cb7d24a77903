/**
 * Several Chromium (libwebrtc) peer connections to ICE-lite icewire agents that share ONE `IceUdpMux` port, on the
 * loopback interface of a network namespace the test creates (see chromium.ts). Four pages of one browser each offer
 * a data channel; a lite `IceSdpSession` per page answers on the mux. Every answer names the same port, every pair
 * connects, each agent selects its own browser's candidate, and the browser's DTLS (we answer `a=setup:passive`, so
 * the browser is the DTLS client and sends its ClientHello once ICE is up) reaches the agent of that browser and no
 * other: the router learns each 5-tuple from its agent's authenticated answers (issue 12).
 *
 * Skipped with a warning when Chromium, playwright-core or `ip netns` is missing; fails under CI instead. Bounded:
 * one browser, one child, about ten seconds.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { checkChromium, ChromiumPeer, LoopbackNamespace } from './chromium.js';
import { answerEveryPage, candidates, expectEachPeerOnItsOwnAgent, IcewireMuxPeer } from './chromium-mux.js';

const availability = checkChromium();
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium mux test skipped: ${availability.ok ? '' : availability.reason}`);

/** Browser peer connections on the one mux port. */
const PEERS = 4;

let ns: LoopbackNamespace | undefined;
let browser: ChromiumPeer | undefined;
let icewire: IcewireMuxPeer | undefined;
afterAll(async () => {
  await Promise.allSettled([browser?.close(), icewire?.close()]);
  ns?.remove();
});

describe.skipIf(!run)('interop: Chromium peer connections to lite icewire agents on one UDP mux port', () => {
  it(`${PEERS} browser peer connections, one mux port: each connects to its own agent, DTLS reaches the right one`, async () => {
    ns = LoopbackNamespace.create();
    const [b, w] = await Promise.allSettled([ChromiumPeer.launch(ns), IcewireMuxPeer.start(ns)]);
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
      expect(candidates(answer)).toEqual([{ transport: 'udp', address: '127.0.0.1', port: mux.port, type: 'host' }]);
      expect(answer).toContain(`m=application ${mux.port} `);
    }
    expect(new Set(answers.map((a) => /^a=ice-ufrag:(\S+)/m.exec(a)?.[1])).size).toBe(PEERS);

    const { report, context } = await expectEachPeerOnItsOwnAgent(pages, mux, 10_000);
    // Nothing the browsers sent went to a ufrag the mux did not know.
    expect(report.dropped['unknown-ufrag'] ?? 0, context).toBe(0);
    expect(report.routed, context).toBeGreaterThan(0);
  }, 30_000);
});
