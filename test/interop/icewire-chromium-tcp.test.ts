/**
 * ICE-TCP (RFC 6544) against Chromium's libwebrtc: in a network namespace whose only link is `lo`, an nftables rule
 * (inside that namespace only) drops every UDP datagram, so ICE can only succeed over TCP. The browser offers a data
 * channel and controls; icewire answers with TCP candidates only (passive, plus active for the full agent), as a full
 * agent and as an ICE-lite one. The browser's active candidate must connect to icewire's passive one, and both sides
 * must select that TCP pair. DTLS never runs (icewire has none), as in `icewire-chromium.test.ts`.
 *
 * Skipped with a warning when Chromium, playwright-core, `ip netns` or `nft` is missing; fails under CI instead
 * (`.ci/run` installs nftables).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { checkChromium, checkNft, ChromiumPeer, dropUdp, IcewirePeer, LoopbackNamespace } from './chromium.js';

const base = checkChromium();
const availability = base.ok ? checkNft() : base;
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium ICE-TCP test skipped: ${availability.ok ? '' : availability.reason}`);

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 53 + 7) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');

function dataChannelSdp(mid: string): string {
  return [
    'v=0',
    'o=- 4611731400430051337 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    `a=mid:${mid}`,
    'a=setup:active',
    `a=fingerprint:sha-256 ${FINGERPRINT}`,
    'a=sctp-port:5000',
    '',
  ].join('\r\n');
}

/** The TCP host candidates on 127.0.0.1 of component 1 in a description (of one tcptype when given). */
function tcpCandidates(sdp: string, type?: string): { port: number; tcpType: string }[] {
  return [...sdp.matchAll(/^a=candidate:\S+ 1 tcp \d+ 127\.0\.0\.1 (\d+) typ host tcptype (\S+)/gim)]
    .map((m) => ({ port: Number(m[1]), tcpType: m[2]! }))
    .filter((c) => type === undefined || c.tcpType === type);
}

let ns: LoopbackNamespace | undefined;
let browser: ChromiumPeer | undefined;
let icewire: IcewirePeer | undefined;
afterEach(async () => {
  await Promise.allSettled([browser?.close(), icewire?.close()]);
  ns?.remove();
  browser = icewire = ns = undefined;
});

async function eventually(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

describe.skipIf(!run)('interop: Chromium -> icewire over ICE-TCP, UDP dropped', () => {
  it('Chromium, playwright-core, ip netns and nft are available', () => expect(availability.ok ? 'ok' : availability.reason).toBe('ok'));

  for (const mode of ['full', 'lite'] as const) {
    it(`browser offers, icewire (${mode}) answers with TCP candidates: the TCP pair is selected on both sides`, async () => {
      ns = LoopbackNamespace.create();
      dropUdp(ns);
      const [b, w] = await Promise.allSettled([ChromiumPeer.launch(ns), IcewirePeer.start(ns)]);
      if (b.status === 'fulfilled') browser = b.value;
      if (w.status === 'fulfilled') icewire = w.value;
      if (b.status === 'rejected') throw b.reason;
      if (w.status === 'rejected') throw w.reason;
      const offer = await browser!.createOffer();
      // libwebrtc gathers TCP host candidates beside the UDP ones (active with port 9).
      expect(tcpCandidates(offer, 'active').map((c) => c.port)).toContain(9);
      const mid = /^a=mid:(\S+)/m.exec(offer)![1]!;
      const answer = await icewire!.answer(offer, dataChannelSdp(mid), {
        rtcpComponents: 1,
        transports: ['tcp'],
        ...(mode === 'lite' ? { lite: true } : { tcpTypes: ['active', 'passive'] }),
      });
      expect(answer).not.toMatch(/ udp /i);
      const passive = tcpCandidates(answer, 'passive');
      expect(passive).toHaveLength(1);
      expect(tcpCandidates(answer, 'active')).toHaveLength(mode === 'lite' ? 0 : 1);
      if (mode === 'lite') expect(answer).toMatch(/^a=ice-lite/m);
      await browser!.setAnswer(answer);
      await Promise.all([browser!.waitIceConnected(20_000), icewire!.waitUp(20_000)]);
      // The browser's active candidate connected to icewire's passive one: icewire sees the browser's ephemeral port
      // as a peer-reflexive TCP candidate; the browser's selected pair names icewire's passive port.
      await eventually(async () => (await browser!.selectedPair())?.state === 'succeeded', 5_000);
      const pair = (await browser!.selectedPair())!;
      expect(pair.remote).toMatchObject({ address: '127.0.0.1', port: passive[0]!.port });
      const sel = icewire!.selected()!;
      expect(sel.local).toMatchObject({ transport: 'tcp', port: passive[0]!.port });
      expect(sel.remote.transport).toBe('tcp');
      const stats = (await icewire!.stats())!;
      const onSel = stats.pairs.find((p) => p.local.port === sel.local.port && p.remote.port === sel.remote.port)!;
      expect(onSel.requestsReceived).toBeGreaterThan(0);
      expect(onSel.responsesSent).toBeGreaterThan(0);
      if (mode === 'full') expect(onSel.responsesReceived).toBeGreaterThan(0); // our triggered check was answered
      expect(Object.keys(stats.dropped).filter((k) => k.startsWith('request-') || k.startsWith('tcp-'))).toEqual([]);
    }, 60_000);
  }
});
