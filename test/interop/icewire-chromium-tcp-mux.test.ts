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
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { checkChromium, ChromiumPeer, LoopbackNamespace } from './chromium.js';
import { IcewireMuxPeer, type MuxReport } from './chromium-mux.js';

const base = checkChromium();
const nft = spawnSync('nft', ['--version'], { encoding: 'utf8' });
const availability = !base.ok ? base : nft.status !== 0 ? { ok: false as const, reason: 'nft missing (apt-get install nftables)' } : { ok: true as const };
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium TCP mux test skipped: ${availability.ok ? '' : availability.reason}`);

/** Drops every UDP datagram leaving any socket of the namespace (as icewire-chromium-tcp.test.ts does). */
function dropUdp(ns: LoopbackNamespace): void {
  const rules = ['add table inet icewire', 'add chain inet icewire out { type filter hook output priority 0 ; policy accept ; }', 'add rule inet icewire out meta l4proto udp drop'];
  for (const r of rules) {
    const x = spawnSync('ip', ['netns', 'exec', ns.name, 'nft', ...r.split(' ')], { encoding: 'utf8' });
    if (x.status !== 0) throw new Error(`nft ${r}: ${x.stderr.trim()}`);
  }
}

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

function candidates(sdp: string): { transport: string; address: string; port: number; type: string; tcpType: string | undefined }[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)(?: tcptype (\S+))?/gm)].map((m) => ({ transport: m[1]!.toLowerCase(), address: m[2]!, port: Number(m[3]), type: m[4]!, tcpType: m[5] }));
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
      expect(candidates(answer)).toEqual([{ transport: 'tcp', address: '127.0.0.1', port: mux.port, type: 'host', tcpType: 'passive' }]);
    }
    expect(new Set(answers.map((a) => /^a=ice-ufrag:(\S+)/m.exec(a)?.[1])).size).toBe(PEERS);

    await Promise.all(pages.map((p, i) => Promise.all([p.waitIceConnected(15_000), mux.waitUp(i, 15_000)])));

    // Each browser pair ends at the mux port (its own connection, from its own port); each agent selected it.
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
    // Every connection the browsers opened reached an agent: none was closed by the mux.
    expect(Object.values(report!.dropped).reduce((a, b) => a + b, 0), context).toBe(0);
    expect(report!.routed, context).toBeGreaterThan(0);
  }, 30_000);
});
