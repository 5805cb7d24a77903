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
import { IcewireMuxPeer, type MuxReport } from './chromium-mux.js';

const availability = checkChromium();
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium mux test skipped: ${availability.ok ? '' : availability.reason}`);

/** Browser peer connections on the one mux port. */
const PEERS = 4;

/** A syntactically valid sha-256 fingerprint: nothing here completes DTLS, so no certificate stands behind it. */
const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 29 + 3) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');

/** A data-channel section (RFC 8841) answering as the DTLS server, so that the browser sends the first DTLS record. */
function dataChannelAnswer(mid: string): string {
  return [
    'v=0',
    'o=- 4611731400430051338 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    'a=msid-semantic: WMS',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    `a=mid:${mid}`,
    'a=setup:passive',
    `a=fingerprint:sha-256 ${FINGERPRINT}`,
    'a=sctp-port:5000',
    'a=max-message-size:262144',
    '',
  ].join('\r\n');
}

function candidates(sdp: string): { transport: string; address: string; port: number; type: string }[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/gm)].map((m) => ({ transport: m[1]!.toLowerCase(), address: m[2]!, port: Number(m[3]), type: m[4]! }));
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

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

    // Signalling, one peer connection after the other (the browser's offers, our answers on the mux).
    const answers: string[] = [];
    for (const [i, page] of pages.entries()) {
      const offer = await page.createOffer();
      const mid = /^a=mid:(\S+)/m.exec(offer)![1]!;
      const answer = await mux.answer(i, offer, dataChannelAnswer(mid));
      await page.setAnswer(answer);
      answers.push(answer);
    }
    // Every answer is lite and names the one mux port, in its candidates and its m= line.
    for (const answer of answers) {
      expect(answer).toMatch(/^a=ice-lite\r?$/m);
      expect(candidates(answer)).toEqual([{ transport: 'udp', address: '127.0.0.1', port: mux.port, type: 'host' }]);
      expect(answer).toContain(`m=application ${mux.port} `);
    }
    expect(new Set(answers.map((a) => /^a=ice-ufrag:(\S+)/m.exec(a)?.[1])).size).toBe(PEERS);

    await Promise.all(pages.map((p, i) => Promise.all([p.waitIceConnected(10_000), mux.waitUp(i, 10_000)])));

    // Each browser pair ends at the mux port; each agent selected its own browser's candidate.
    const browserPairs = await Promise.all(pages.map((p) => p.selectedPair()));
    const browserPorts = browserPairs.map((p) => p?.local.port);
    expect(new Set(browserPorts).size).toBe(PEERS);
    for (const p of browserPairs) expect(p?.remote).toMatchObject({ address: '127.0.0.1', port: mux.port });

    // The browsers' DTLS (ClientHello, retransmitted while unanswered) arrives, each at its own agent only, and their
    // consent checks (RFC 7675, about one a second at first) reach that agent and are answered.
    let report: MuxReport | undefined;
    const settled = async (): Promise<boolean> => {
      report = await mux.stats();
      return report.sessions.length === PEERS && report.sessions.every((s) => s.data.dtls > 0 && s.selected !== undefined && s.responsesSent > 0);
    };
    await until(settled, 8_000);
    const context = JSON.stringify({ report, browserPairs, warnings: mux.warnings() });
    expect(report!.agents, context).toBe(PEERS);
    for (const s of report!.sessions) {
      const own = `127.0.0.1:${browserPorts[s.index]}`;
      expect(s.state, context).toMatch(/^(connected|completed)$/);
      expect(s.selected?.local, context).toMatchObject({ address: '127.0.0.1', port: mux.port });
      expect(`${s.selected?.remote.address}:${s.selected?.remote.port}`, context).toBe(own);
      expect(s.data.dtls, context).toBeGreaterThan(0);
      expect(s.data.from, context).toEqual([own]);
      // The browser's consent checks on the pair were answered by this agent.
      expect(s.requestsReceived, context).toBeGreaterThan(0);
      expect(s.responsesSent, context).toBeGreaterThan(0);
    }
    // Nothing the browsers sent went to a ufrag the mux did not know.
    expect(report!.dropped['unknown-ufrag'] ?? 0, context).toBe(0);
    expect(report!.routed, context).toBeGreaterThan(0);
  }, 30_000);
});
