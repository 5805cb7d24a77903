/**
 * icewire against Chromium with mDNS host candidates on both sides (draft-ietf-mmusic-mdns-ice-candidates): Chromium
 * without media permission signals `<uuid>.local` names, and icewire runs with `mdns: true`. Chromium runs in one
 * network namespace, icewire (a child process, see chromium.ts) in another, joined by a veth pair: Chromium's mDNS
 * stack refuses a loopback-only namespace. Each side must resolve the other's names by mDNS over that link.
 *
 * Cases: both roles, both orders (icewire's agent made before or after Chromium gathered and announced its name),
 * descriptions delivered at once or 1.2 s late. Each run measures the time from the last description being applied
 * to both sides reporting ICE `connected`, and to each side's selected pair being on the other's resolved name, and
 * prints the table. Not covered: Chromium offering to an icewire agent made before the offer (`IceSdpSession` makes
 * its agents in `createAnswer`).
 *
 * Skipped with a warning when Chromium, playwright-core, root or `ip netns` is missing; fails under CI instead.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, checkChromium, ChromiumPeer, IcewirePeer } from './chromium.js';
import { VethNamespaces } from './veth.js';

const availability = checkChromium();
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium mDNS interop test skipped: ${availability.ok ? '' : availability.reason}`);

/**
 * The harness's flags minus those that expose raw addresses: no fake media permission (so libwebrtc hides host
 * addresses behind mDNS names), mDNS left on, no loopback.
 */
const MDNS_ARGS = CHROMIUM_ARGS.filter(
  (a) => a !== '--use-fake-ui-for-media-stream' && a !== '--allow-loopback-in-peer-connection' && !a.startsWith('--disable-features='),
);

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 53 + 7) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');

function dataChannelSdp(mid: string, setup: 'active' | 'actpass'): string {
  return [
    'v=0',
    'o=- 4611731400430051337 2 IN IP4 0.0.0.0',
    's=-',
    't=0 0',
    `a=group:BUNDLE ${mid}`,
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    `a=mid:${mid}`,
    `a=setup:${setup}`,
    `a=fingerprint:sha-256 ${FINGERPRINT}`,
    'a=sctp-port:5000',
    '',
  ].join('\r\n');
}

const hostAddresses = (sdp: string): string[] => [...sdp.matchAll(/^a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host/gim)].map((m) => m[1]!);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measured {
  readonly name: string;
  /** Both sides ICE-connected, after the last description was applied. */
  readonly ms: number;
  /** Each side's selected pair on the other's resolved name (a host candidate, no longer peer-reflexive). */
  readonly icewireResolvedMs: number;
  readonly browserResolvedMs: number;
}
const measured: Measured[] = [];

let net: VethNamespaces | undefined;
let browser: ChromiumPeer | undefined;

/**
 * Debug switch: `ICEWIRE_MDNS_PCAP=<dir>` captures UDP in both namespaces (tcpdump, needed only then) into
 * `<dir>/browser.pcap` and `<dir>/icewire.pcap`, and logs when each case's last description was applied.
 */
const PCAP_DIR = process.env.ICEWIRE_MDNS_PCAP;
const captures: ChildProcess[] = [];

function startCapture(ns: string, file: string): void {
  if (spawnSync('which', ['tcpdump']).status !== 0) throw new Error('ICEWIRE_MDNS_PCAP needs tcpdump');
  const p = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '-i', 'any', '--immediate-mode', '-U', '-n', '-w', file, 'udp'], { stdio: 'ignore' });
  captures.push(p);
}

async function stopCaptures(): Promise<void> {
  await Promise.all(
    captures.splice(0).map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const t = setTimeout(() => p.kill('SIGKILL'), 2_000);
          p.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.kill('SIGINT');
        }),
    ),
  );
}

describe.skipIf(!run)('interop: icewire <-> Chromium over mDNS names (two namespaces, veth)', () => {
  beforeAll(async () => {
    expect(availability.ok ? 'ok' : availability.reason).toBe('ok');
    net = VethNamespaces.create();
    if (PCAP_DIR !== undefined) {
      startCapture(net.a.name, join(PCAP_DIR, 'browser.pcap'));
      startCapture(net.b.name, join(PCAP_DIR, 'icewire.pcap'));
      await sleep(500); // tcpdump attaches
    }
    browser = await ChromiumPeer.launch(net.a, 20_000, MDNS_ARGS);
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await stopCaptures();
    net?.remove();
    if (measured.length > 0) {
      console.log(`icewire-chromium mDNS (${browser?.version() ?? ''}), ms after the last description was applied:`);
      for (const m of measured) {
        console.log(`  ${m.name}: connected ${m.ms}; on the resolved name: icewire ${m.icewireResolvedMs}, browser ${m.browserResolvedMs}`);
      }
    }
  }, 20_000);

  type Order = 'icewire first' | 'browser first';
  const cases: { offerer: 'browser' | 'icewire'; order: Order; delay: number }[] = [];
  for (const delay of [0, 1200]) {
    cases.push({ offerer: 'browser', order: 'browser first', delay });
    cases.push({ offerer: 'icewire', order: 'icewire first', delay });
    cases.push({ offerer: 'icewire', order: 'browser first', delay });
  }

  it.each(cases)('$offerer offers, $order, descriptions $delay ms late: ICE connects over mDNS names', async ({ offerer, order, delay }) => {
    const b = browser!;
    const w = await IcewirePeer.start(net!.b, 20_000);
    try {
      const opts = { hostAddress: net!.b.address, mdns: true } as const;
      // With a candidate pool the browser gathers, and announces its name, before icewire's agent exists.
      await b.prepare(order === 'browser first' && offerer === 'icewire' ? 1 : 0);
      if (order === 'browser first' && offerer === 'icewire') await sleep(400);
      let offer: string;
      let answer: string;
      let appliedAt: number;
      if (offerer === 'browser') {
        offer = await b.createOffer();
        await sleep(delay);
        const mid = /^a=mid:(\S+)/m.exec(offer)![1]!;
        answer = await w.answer(offer, dataChannelSdp(mid, 'active'), opts);
        await sleep(delay);
        appliedAt = Date.now();
        await b.setAnswer(answer);
      } else {
        offer = await w.offer(dataChannelSdp('0', 'actpass'), opts);
        await sleep(delay);
        answer = await b.createAnswer(offer);
        await sleep(delay);
        appliedAt = Date.now();
        await w.remoteAnswer(answer);
      }
      if (PCAP_DIR !== undefined) console.log(`pcap: ${offerer} offers, ${order}, delay ${delay}: applied at ${appliedAt / 1000}`);
      const browserSdp = offerer === 'browser' ? offer : answer;
      const icewireSdp = offerer === 'browser' ? answer : offer;
      // Both sides hide their address behind a name (draft §3.1.1): no veth address in either description.
      expect(hostAddresses(browserSdp).length).toBeGreaterThan(0);
      expect(hostAddresses(browserSdp).every((a) => a.endsWith('.local')), browserSdp).toBe(true);
      expect(hostAddresses(icewireSdp).length).toBe(1);
      expect(hostAddresses(icewireSdp).every((a) => a.endsWith('.local')), icewireSdp).toBe(true);
      expect(browserSdp + icewireSdp).not.toContain(net!.a.address);
      expect(browserSdp + icewireSdp).not.toContain(net!.b.address);

      const [history] = await Promise.all([b.waitIceConnected(8_000), w.waitUp(8_000)]);
      const browserUp = history.find((h) => h.kind === 'ice' && (h.state === 'connected' || h.state === 'completed'))!.at;
      const icewireUp = w.messages.find((m) => m.type === 'state' && (m.state === 'connected' || m.state === 'completed'));
      const icewireAt = icewireUp?.type === 'state' ? icewireUp.at : Infinity;
      const ms = Math.max(browserUp, icewireAt) - appliedAt;
      // Checks can connect before a name resolves (the first check makes a peer-reflexive candidate). Each side must
      // still resolve the other's name: its selected pair's remote becomes the signalled host candidate (RFC 8838
      // §11), within a bounded wait.
      const deadline = Date.now() + 3_000;
      let browserResolvedAt = Infinity;
      while (Date.now() < deadline) {
        if (browserResolvedAt === Infinity && (await b.selectedPair())?.remote.candidateType === 'host') browserResolvedAt = Date.now();
        if (browserResolvedAt !== Infinity && w.selected()?.remote.type === 'host') break;
        await sleep(20);
      }
      const icewireResolved = w.messages.find((m) => m.type === 'selected' && m.remote.type === 'host');
      const icewireResolvedAt = icewireResolved?.type === 'selected' ? icewireResolved.at : Infinity;
      measured.push({
        name: `${offerer} offers, ${order}, delay ${delay}`,
        ms,
        icewireResolvedMs: Math.max(0, icewireResolvedAt - appliedAt),
        browserResolvedMs: Math.max(0, browserResolvedAt - appliedAt),
      });
      const selected = w.selected()!;
      expect(selected.local.address).toBe(net!.b.address);
      expect(selected.remote).toMatchObject({ address: net!.a.address, type: 'host' });
      // Chromium's stats leave out the address of a candidate it learnt under a name: the port and type tell.
      expect((await b.selectedPair())?.remote).toMatchObject({ port: selected.local.port, candidateType: 'host' });
      expect(w.messages.filter((m) => m.type === 'warning')).toEqual([]);
      // The goal is 50 ms (issue 17), held as the median over the cases (last test). Each run gets room for a loaded
      // 2-core CI running Chromium, the child and other test files at once (up to 68 ms seen); a name answered only
      // at the next announcement, the failure this guards against, costs about a second.
      expect(ms).toBeLessThan(150);
    } finally {
      await w.close();
    }
  }, 20_000);

  it('connects within 50 ms of both descriptions being applied (median over the cases above)', () => {
    expect(measured.length).toBe(cases.length);
    const sorted = measured.map((m) => m.ms).sort((a, b) => a - b);
    const median = (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
    expect(median).toBeLessThanOrEqual(50);
  });
});
