/**
 * ICE restarts between icewire and Chromium's libwebrtc on loopback (a network namespace, see chromium.ts): each side
 * restarting, with each side the first offerer (so each role restarts), three restarts per session with signalling
 * delays of 0, 300 and 1,000 ms each way. libwebrtc gathers new ports on a restart and, before the answer arrives,
 * checks from them to our unchanged host address under the old credentials (issue 17): icewire now restarts on new
 * ports too, keeps the old generation's credentials on the previous pair, and never answers a plain re-offer with new
 * credentials.
 *
 * Data: icewire sends a datagram every 15 ms on its selected pair; the browser's candidate-pair `bytesReceived`
 * (getStats in a loop) shows when it arrives. The browser cannot send data back without DTLS, which icewire does not
 * do, so the other direction is measured by icewire itself: how long it had no pair to send on. After each restart
 * both sides must be on the same new pair, on new ports.
 *
 * Bounded: four sessions of about ten seconds each.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { checkChromium, ChromiumPeer, IcewirePeer, LoopbackNamespace } from './chromium.js';

const availability = checkChromium();
const run = availability.ok || Boolean(process.env.CI);
if (!run) console.warn(`icewire-chromium restart test skipped: ${availability.ok ? '' : availability.reason}`);

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 53 + 7) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');
function dataChannelSdp(mid: string, setup: 'active' | 'passive' | 'actpass'): string {
  return [
    'v=0',
    'o=- 4611731400430051337 2 IN IP4 127.0.0.1',
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const isUp = (s: string): boolean => s === 'connected' || s === 'completed';
const DELAYS = [0, 300, 1000] as const;
/** Largest tolerated gap in data, ms (issue 17). */
const MAX_GAP_MS = 100;
/** icewire sends a datagram this often, ms. */
const PERIOD_MS = 15;

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

async function setUp(): Promise<{ b: ChromiumPeer; w: IcewirePeer }> {
  ns = LoopbackNamespace.create();
  const [b, w] = await Promise.allSettled([ChromiumPeer.launch(ns), IcewirePeer.start(ns, 40_000)]);
  if (b.status === 'fulfilled') browser = b.value;
  if (w.status === 'fulfilled') icewire = w.value;
  if (b.status === 'rejected') throw b.reason;
  if (w.status === 'rejected') throw w.reason;
  return { b: browser!, w: icewire! };
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

/** Both sides name the same 5-tuple, nominated, and icewire's end is not `oldPort`. */
async function onSameNewPair(b: ChromiumPeer, w: IcewirePeer, oldPort: number): Promise<boolean> {
  const mine = w.selected();
  const theirs = await b.selectedPair();
  if (!mine || !theirs || mine.local.port === oldPort || !theirs.nominated) return false;
  return theirs.remote.port === mine.local.port && theirs.local.port === mine.remote.port;
}

interface Measured {
  readonly delay: number;
  /** Datagrams icewire sent that the browser never received. */
  readonly lost: number;
  readonly browserGapMs: number;
  /** When the largest gap began, ms after the restart began. */
  readonly gapAtMs: number;
  readonly sampleMs: number;
  readonly icewireRefusedMs: number;
  readonly switchMs: number;
}

describe.skipIf(!run)('interop: ICE restarts between icewire and Chromium, no gap in data', () => {
  for (const first of ['browser', 'icewire'] as const) {
    for (const restarter of ['browser', 'icewire'] as const) {
      it(`${first} offers first, ${restarter} restarts (0, 300, 1000 ms signalling each way)`, async () => {
        const { b, w } = await setUp();
        let mid = '0';
        // DTLS roles never change on a re-offer: the side that answered first stays the client.
        const icewireSetup = first === 'browser' ? 'active' : 'passive';
        if (first === 'browser') {
          const offer = await b.createOffer();
          mid = /^a=mid:(\S+)/m.exec(offer)![1]!;
          await b.setAnswer(await w.answer(offer, dataChannelSdp(mid, 'active')));
        } else {
          const offer = await w.offer(dataChannelSdp(mid, 'actpass'));
          await w.remoteAnswer(await b.createAnswer(offer));
        }
        await Promise.all([b.waitIceConnected(10_000), w.waitUp(10_000)]);
        expect(await until(async () => (await b.selectedPair())?.nominated === true && w.selected() !== undefined, 5_000)).toBe(true);

        const results: Measured[] = [];
        for (const delay of DELAYS) {
          const oldPort = w.selected()!.local.port;
          const statesBefore = w.states().length;
          const historyBefore = (await b.history()).length;
          await b.startSampling();
          await w.streamStart(PERIOD_MS);
          await sleep(200);
          const t0 = Date.now();
          if (restarter === 'browser') {
            const offer = await b.restartOffer();
            await sleep(delay);
            const answer = await w.answer(offer, dataChannelSdp(mid, icewireSetup));
            await sleep(delay);
            await b.setAnswer(answer);
          } else {
            const offer = await w.restartOffer(dataChannelSdp(mid, 'actpass'));
            await sleep(delay);
            const answer = await b.reanswer(offer);
            await sleep(delay);
            await w.remoteAnswer(answer);
          }
          const moved = await until(() => onSameNewPair(b, w, oldPort), 6_000);
          const switchMs = Date.now() - t0;
          await sleep(300);
          const sent = await w.streamStop();
          await sleep(150); // the last datagrams land, and the browser's stats cache (50 ms) moves on
          const gaps = await b.stopSampling();
          const lost = Math.max(0, sent.sent - Math.floor(gaps.bytes / 1000));
          const m: Measured = {
            delay,
            lost,
            browserGapMs: gaps.gapMs,
            gapAtMs: gaps.gapAtMs - 200,
            sampleMs: gaps.sampleMs,
            icewireRefusedMs: sent.refusedMs,
            switchMs,
          };
          results.push(m);
          const context = JSON.stringify({ m, restarter, first, selected: w.selected(), browser: await b.selectedPair(), states: w.states().slice(statesBefore) });
          expect(moved, context).toBe(true);
          expect(sent.sent, context).toBeGreaterThan(10);
          // Every datagram icewire sent reached the browser but for at most a 100 ms run of them (a lost path loses
          // each one sent into it). The sampled gap is reported only: getStats stalls while the browser applies a
          // description (samples up to ~100 ms apart) and is cached for 50 ms, so it cannot resolve 100 ms.
          expect(lost, context).toBeLessThanOrEqual(Math.floor(MAX_GAP_MS / PERIOD_MS) - 1);
          expect(sent.refusedMs, context).toBeLessThanOrEqual(MAX_GAP_MS);
          // Neither side ever left connected/completed.
          expect(w.states().slice(statesBefore).every(isUp), context).toBe(true);
          const ice = (await b.history()).slice(historyBefore).filter((h) => h.kind === 'ice').map((h) => h.state);
          expect(ice.every(isUp), `${context} browser: ${JSON.stringify(ice)}`).toBe(true);
        }
        if (process.env.ICEWIRE_CHROMIUM_DEBUG) console.log(JSON.stringify({ first, restarter, chromium: b.version(), results }));
      }, 40_000);
    }
  }
});
