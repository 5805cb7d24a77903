/**
 * Test helper for the Chromium interop test: a real browser ICE stack (Chromium's libwebrtc, Debian `chromium`,
 * driven by playwright-core) against icewire, both on the loopback interface of a network namespace the test
 * creates and removes.
 *
 * Why a namespace: on the host, Chromium either gathers only the default-route addresses (no loopback at all), or,
 * once a page has media permission, every interface's address too, and libwebrtc pairs those with our loopback
 * candidates (it checks only the address family). icewire would then answer checks to the LAN address, which the
 * network rules forbid. In a fresh namespace whose only link is `lo`, 127.0.0.1 is all either side can see.
 *
 * icewire has to run in that namespace too, so its side is a child Node process (`ip netns exec`) that runs this
 * very file with `--icewire-peer`, speaking JSON lines on stdin/stdout like the libnice peer. The child loads the
 * TypeScript sources through the loader hooks of `ts-child.ts` (types stripped by oxc, else typescript), so it
 * tests the sources, not a possibly stale `dist/`.
 *
 * Everything is bounded: every wait has a timeout, the child exits by itself after `hardTimeoutMs`, the browser and
 * the child are killed on `close()` (and SIGKILLed if the test process exits first), and the namespace is removed.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { tsChildNodeArgs } from './ts-child.js';

/** Debian's Chromium (package `chromium`). */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a headless Chromium, root, no background traffic, fresh profile; plus what WebRTC on lo needs. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // libwebrtc ignores loopback networks unless told otherwise.
  '--allow-loopback-in-peer-connection',
  // Without media permission libwebrtc binds only to the default-route address, and the namespace has no route: this
  // flag answers permission prompts and queries with "granted", so every interface (here: lo only) is enumerated.
  '--use-fake-ui-for-media-stream',
  // Raw host candidates, no `<uuid>.local` names: with mDNS on, the responder fails to start in the namespace and the
  // page dies. (Being the last --disable-features, this replaces Playwright's own list, which only concerns features
  // that would reach the network, and there is none in the namespace.)
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

/** Whether the Chromium interop test can run here; `reason` says what is missing. */
export type ChromiumAvailability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Chromium, playwright-core, and root with `ip netns` (iproute2) are needed. */
export function checkChromium(): ChromiumAvailability {
  if (!existsSync(CHROMIUM_PATH)) return { ok: false, reason: `${CHROMIUM_PATH} missing (apt-get install chromium)` };
  try {
    createRequire(import.meta.url).resolve('playwright-core');
  } catch {
    return { ok: false, reason: 'playwright-core missing (npm install)' };
  }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' };
  const ip = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ip.status !== 0) return { ok: false, reason: `ip netns unavailable: ${ip.error?.message ?? ip.stderr.trim()}` };
  return { ok: true };
}

/** A network namespace whose only link is `lo` (up). */
/** Whether `nft` (Debian's nftables) is here, for the tests that drop UDP inside their namespace. */
export function checkNft(): ChromiumAvailability {
  const nft = spawnSync('nft', ['--version'], { encoding: 'utf8' });
  return nft.status === 0 ? { ok: true } : { ok: false, reason: 'nft missing (apt-get install nftables)' };
}

/** Drops every UDP datagram leaving any socket of the namespace (so on its `lo`, every UDP datagram). */
export function dropUdp(ns: LoopbackNamespace): void {
  const rules = ['add table inet icewire', 'add chain inet icewire out { type filter hook output priority 0 ; policy accept ; }', 'add rule inet icewire out meta l4proto udp drop'];
  for (const r of rules) {
    const x = spawnSync('ip', ['netns', 'exec', ns.name, 'nft', ...r.split(' ')], { encoding: 'utf8' });
    if (x.status !== 0) throw new Error(`nft ${r}: ${x.stderr.trim()}`);
  }
}

export class LoopbackNamespace {
  readonly name: string;
  #removed = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates the namespace (removing a leftover of the same name first). */
  static create(name = `icewire-chr-${process.pid}-${Math.floor(Math.random() * 1e6)}`): LoopbackNamespace {
    spawnSync('ip', ['netns', 'del', name]);
    for (const args of [['netns', 'add', name], ['-n', name, 'link', 'set', 'lo', 'up']]) {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
    }
    const ns = new LoopbackNamespace(name);
    liveNamespaces.add(ns);
    return ns;
  }

  /** Removes the namespace. Idempotent. */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    liveNamespaces.delete(this);
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

const liveNamespaces = new Set<LoopbackNamespace>();
const liveChildren = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
  for (const ns of liveNamespaces) spawnSync('ip', ['netns', 'del', ns.name]);
});

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout (${ms} ms): ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

// ---- the browser ---------------------------------------------------------------------------------------------

/** One ICE state change seen in the page, with ms since the page's RTCPeerConnection was created. */
export interface BrowserStateChange {
  readonly t: number;
  /** Wall-clock time (`Date.now()` in the page), comparable with the icewire child's `at`. */
  readonly at: number;
  /** `ice`: RTCPeerConnection.iceConnectionState; `transport`: RTCIceTransport.state; `pc`: connectionState. */
  readonly kind: 'ice' | 'transport' | 'pc';
  readonly state: string;
}

/** The browser's view of its selected pair (from getStats), and its STUN counters on it. */
export interface BrowserPairReport {
  readonly local: { readonly address: string; readonly port: number; readonly candidateType: string };
  readonly remote: { readonly address: string; readonly port: number; readonly candidateType: string };
  readonly state: string;
  readonly nominated: boolean;
  readonly requestsSent: number;
  readonly requestsReceived: number;
  readonly responsesSent: number;
  readonly responsesReceived: number;
  /** Consent checks sent (RFC 7675), where the browser reports them. */
  readonly consentRequestsSent: number;
}

/**
 * Headless Chromium in a namespace, with one page on `http://localhost/` (served by Playwright's request
 * interception, so nothing listens and nothing is fetched; localhost is a secure context).
 */
export class ChromiumPeer {
  readonly #context: BrowserContext;
  readonly page: Page;
  readonly #dir: string;
  /** False for a page opened by {@link newPage}: it closes only itself, the browser belongs to the launcher. */
  readonly #ownsBrowser: boolean;
  #closed = false;

  private constructor(context: BrowserContext, page: Page, dir: string, ownsBrowser = true) {
    this.#context = context;
    this.page = page;
    this.#dir = dir;
    this.#ownsBrowser = ownsBrowser;
  }

  /** Launches Chromium inside `ns` and opens the page. */
  static async launch(ns: { readonly name: string }, timeoutMs = 15_000, args: readonly string[] = CHROMIUM_ARGS): Promise<ChromiumPeer> {
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'icewire-chromium-'));
    // `ip netns exec` execs Chromium in place, so the pid Playwright kills is Chromium's own.
    const wrapper = join(dir, 'chromium-in-netns.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec '${ns.name}' '${CHROMIUM_PATH}' "$@"\n`, { mode: 0o755 });
    let context: BrowserContext | undefined;
    try {
      context = await chromium.launchPersistentContext(join(dir, 'profile'), {
        executablePath: wrapper,
        headless: true,
        args: [...args],
        timeout: timeoutMs,
      });
      const page = context.pages()[0] ?? (await context.newPage());
      await preparePage(page, timeoutMs);
      return new ChromiumPeer(context, page, dir);
    } catch (e) {
      await context?.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Opens another page in the same browser, with its own RTCPeerConnection (so one browser runs several peers).
   * Its `close()` closes only that page; the launched peer's closes the browser with every page.
   */
  async newPage(timeoutMs = 15_000): Promise<ChromiumPeer> {
    const page = await this.#context.newPage();
    await preparePage(page, timeoutMs);
    return new ChromiumPeer(this.#context, page, this.#dir, false);
  }

  /**
   * Closes the page's connection and clears its history; with `pool` > 0, makes the next connection now with that
   * many pooled candidates, so the browser gathers (and announces its mDNS names) before any description.
   */
  prepare(pool = 0): Promise<void> {
    return this.page.evaluate((n) => (globalThis as unknown as PageHelpers).__ice.prepare(n), pool);
  }

  /** Chromium's version string (`HeadlessChrome/x.y.z.w`). */
  version(): string {
    return this.#context.browser()?.version() ?? 'unknown';
  }

  /** Creates an RTCPeerConnection (no ICE servers) with a data channel, and returns its offer once gathered. */
  createOffer(): Promise<string> {
    return this.page.evaluate(() => (globalThis as unknown as PageHelpers).__ice.createOffer());
  }

  /** Creates the RTCPeerConnection, applies a remote offer, and returns the gathered answer. */
  createAnswer(offer: string): Promise<string> {
    return this.page.evaluate((sdp) => (globalThis as unknown as PageHelpers).__ice.createAnswer(sdp), offer);
  }

  /** Applies the remote answer. */
  setAnswer(answer: string): Promise<void> {
    return this.page.evaluate((sdp) => (globalThis as unknown as PageHelpers).__ice.setAnswer(sdp), answer);
  }

  /** Resolves with every state change so far once iceConnectionState is `connected`/`completed`; rejects on timeout. */
  async waitIceConnected(timeoutMs: number): Promise<BrowserStateChange[]> {
    return this.page.evaluate((ms) => (globalThis as unknown as PageHelpers).__ice.waitConnected(ms), timeoutMs);
  }

  /** ICE restart (`restartIce()`) on the existing connection: returns the gathered re-offer. */
  restartOffer(): Promise<string> {
    return this.page.evaluate(() => (globalThis as unknown as PageHelpers).__ice.restartOffer());
  }

  /** Applies a re-offer to the existing connection and returns the gathered answer. */
  reanswer(offer: string): Promise<string> {
    return this.page.evaluate((sdp) => (globalThis as unknown as PageHelpers).__ice.reanswer(sdp), offer);
  }

  /**
   * Starts watching the bytes received on every candidate pair (getStats in a loop): what icewire sends arrives
   * there even though no DTLS ever runs.
   */
  startSampling(): Promise<void> {
    return this.page.evaluate(() => (globalThis as unknown as PageHelpers).__ice.startSampling());
  }

  /** Stops sampling: the largest gap between samples that saw new bytes, and the largest gap between samples. */
  stopSampling(): Promise<BrowserReceiveGaps> {
    return this.page.evaluate(() => (globalThis as unknown as PageHelpers).__ice.stopSampling());
  }

  /** Every state change so far. */
  history(): Promise<BrowserStateChange[]> {
    return this.page.evaluate(() => (globalThis as unknown as PageHelpers).__ice.history.slice());
  }

  /** The selected (or, failing that, succeeded and nominated) candidate pair from the browser's getStats. */
  selectedPair(): Promise<BrowserPairReport | undefined> {
    return this.page.evaluate(() => (globalThis as unknown as PageHelpers).__ice.selectedPair());
  }

  /** Closes the browser and removes its files. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#ownsBrowser) {
      await withTimeout(this.page.close(), 5_000, 'closing a Chromium page').catch(() => undefined);
      return;
    }
    await withTimeout(this.#context.close(), 10_000, 'closing Chromium').catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** Serves `http://localhost/` to the page by interception (nothing listens, nothing is fetched) and installs `__ice`. */
async function preparePage(page: Page, timeoutMs: number): Promise<void> {
  await page.route('http://localhost/**', (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>icewire interop</title>' }));
  await page.goto('http://localhost/', { timeout: timeoutMs });
  await page.evaluate(PAGE_SCRIPT);
}

/** What `stopSampling` measured, ms. */
export interface BrowserReceiveGaps {
  /** Largest time without new bytes on any candidate pair (from the start to the last bytes seen). */
  readonly gapMs: number;
  /** When that gap began, ms after sampling started. */
  readonly gapAtMs: number;
  /** Largest interval between two getStats samples: the resolution of `gapMs`. */
  readonly sampleMs: number;
  readonly samples: number;
  /** Bytes received over every candidate pair seen while sampling (a pair that vanished keeps its last count). */
  readonly bytes: number;
}

interface PageHelpers {
  __ice: {
    history: BrowserStateChange[];
    prepare(pool: number): void;
    restartOffer(): Promise<string>;
    reanswer(offer: string): Promise<string>;
    startSampling(): Promise<void>;
    stopSampling(): Promise<BrowserReceiveGaps>;
    createOffer(): Promise<string>;
    createAnswer(offer: string): Promise<string>;
    setAnswer(answer: string): Promise<void>;
    waitConnected(ms: number): Promise<BrowserStateChange[]>;
    selectedPair(): Promise<BrowserPairReport | undefined>;
  };
}

/**
 * Installed in the page as `window.__ice`. Plain JavaScript in a string: the project compiles without the DOM lib,
 * and a `/// <reference lib="dom" />` here would change the globals of every other file in the test program.
 */
const PAGE_SCRIPT = String.raw`(() => {
  const history = [];
  let pc;
  let sampling;
  let t0 = 0;
  const up = (s) => s === 'connected' || s === 'completed';
  const waiters = [];
  const record = (kind, state) => {
    history.push({ t: Math.round(performance.now() - t0), at: Date.now(), kind, state });
    for (const w of waiters.splice(0)) w();
  };
  let prepared;
  const make = (pool) => {
    if (prepared) {
      const p = prepared;
      prepared = undefined;
      return p;
    }
    t0 = performance.now();
    const p = new RTCPeerConnection({ iceServers: [], iceCandidatePoolSize: pool || 0 });
    p.addEventListener('iceconnectionstatechange', () => record('ice', p.iceConnectionState));
    p.addEventListener('connectionstatechange', () => record('pc', p.connectionState));
    pc = p;
    return p;
  };
  // The RTCIceTransport of the SCTP transport's DTLS transport exists once both descriptions are applied.
  const watchTransport = (p) => {
    const ice = p.sctp && p.sctp.transport && p.sctp.transport.iceTransport;
    if (!ice) return;
    record('transport', ice.state);
    ice.addEventListener('statechange', () => record('transport', ice.state));
  };
  const gathered = (p) => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('browser gathering timed out')), 10000);
    const done = () => {
      if (p.iceGatheringState !== 'complete') return;
      clearTimeout(t);
      resolve(p.localDescription ? p.localDescription.sdp : '');
    };
    p.addEventListener('icegatheringstatechange', done);
    done();
  });
  window.__ice = {
    history,
    // A connection made ahead with a candidate pool gathers (and announces its mDNS names) before any description.
    prepare(pool) {
      if (pc) pc.close();
      history.length = 0;
      prepared = undefined;
      pc = undefined;
      if (pool > 0) prepared = make(pool);
    },
    async createOffer() {
      const p = make();
      p.createDataChannel('x');
      await p.setLocalDescription(await p.createOffer());
      return gathered(p);
    },
    async createAnswer(offer) {
      const p = make();
      await p.setRemoteDescription({ type: 'offer', sdp: offer });
      await p.setLocalDescription(await p.createAnswer());
      watchTransport(p);
      return gathered(p);
    },
    async restartOffer() {
      if (!pc) throw new Error('no RTCPeerConnection');
      pc.restartIce();
      await pc.setLocalDescription(await pc.createOffer());
      return gathered(pc);
    },
    async reanswer(offer) {
      if (!pc) throw new Error('no RTCPeerConnection');
      await pc.setRemoteDescription({ type: 'offer', sdp: offer });
      await pc.setLocalDescription(await pc.createAnswer());
      return gathered(pc);
    },
    async startSampling() {
      const run = { on: true, last: new Map(), first: new Map(), hits: [], start: performance.now(), prev: performance.now(), sampleMs: 0, samples: 0 };
      sampling = run;
      run.done = (async () => {
        while (run.on) {
          const report = await pc.getStats();
          const t = performance.now();
          let more = false;
          for (const st of report.values()) {
            if (st.type !== 'candidate-pair') continue;
            const b = Number(st.bytesReceived || 0);
            if (b > (run.last.get(st.id) || 0)) more = true;
            run.last.set(st.id, Math.max(b, run.last.get(st.id) || 0));
            if (run.samples === 0) run.first.set(st.id, b);
          }
          if (run.samples > 0 && more) run.hits.push(t);
          run.sampleMs = Math.max(run.sampleMs, t - run.prev);
          run.prev = t;
          run.samples++;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
    },
    async stopSampling() {
      const run = sampling;
      if (!run) throw new Error('not sampling');
      run.on = false;
      await run.done;
      // From the start to the last sample that saw bytes: the caller stops sending before it stops sampling.
      const times = [run.start, ...run.hits];
      let gap = 0;
      let gapAt = 0;
      for (let i = 1; i < times.length; i++) {
        if (times[i] - times[i - 1] > gap) {
          gap = times[i] - times[i - 1];
          gapAt = times[i - 1] - run.start;
        }
      }
      let bytes = 0;
      for (const [id, b] of run.last) bytes += b - (run.first.get(id) || 0);
      return { gapMs: Math.round(gap), gapAtMs: Math.round(gapAt), sampleMs: Math.round(run.sampleMs), samples: run.samples, bytes };
    },
    async setAnswer(answer) {
      if (!pc) throw new Error('no RTCPeerConnection');
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      watchTransport(pc);
    },
    waitConnected(ms) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('browser ICE not connected after ' + ms + ' ms: ' + JSON.stringify(history))), ms);
        const check = () => {
          if (pc && up(pc.iceConnectionState)) {
            clearTimeout(t);
            resolve(history.slice());
          } else waiters.push(check);
        };
        check();
      });
    },
    async selectedPair() {
      if (!pc) return undefined;
      const all = [...(await pc.getStats()).values()];
      const byId = new Map(all.map((s) => [s.id, s]));
      const transport = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
      const pair = (transport && byId.get(transport.selectedCandidatePairId)) ||
        all.find((s) => s.type === 'candidate-pair' && s.nominated === true && s.state === 'succeeded');
      if (!pair) return undefined;
      const cand = (id) => {
        const c = byId.get(id) || {};
        return { address: String(c.address ?? c.ip), port: Number(c.port), candidateType: String(c.candidateType) };
      };
      return {
        local: cand(pair.localCandidateId),
        remote: cand(pair.remoteCandidateId),
        state: String(pair.state),
        nominated: pair.nominated === true,
        requestsSent: Number(pair.requestsSent ?? 0),
        requestsReceived: Number(pair.requestsReceived ?? 0),
        responsesSent: Number(pair.responsesSent ?? 0),
        responsesReceived: Number(pair.responsesReceived ?? 0),
        consentRequestsSent: Number(pair.consentRequestsSent ?? 0),
      };
    },
  };
})()`;

// ---- the icewire side, in a child process ------------------------------------------------------------------

/** One side of icewire's selected pair. */
export interface IcewireCandidateInfo {
  readonly address: string;
  readonly port: number;
  readonly type: string;
  readonly transport: string;
}

/** icewire's counters on one pair (a subset of its PairStats). */
export interface IcewirePairCounters {
  readonly local: IcewireCandidateInfo;
  readonly remote: IcewireCandidateInfo;
  readonly state: string;
  readonly nominated: boolean;
  readonly valid: boolean;
  readonly requestsSent: number;
  readonly requestsReceived: number;
  readonly responsesSent: number;
  readonly responsesReceived: number;
}

/** icewire's statistics, as the child reports them. */
export interface IcewireStatsReport {
  /** The agent's ICE role (RFC 8445 §6.1.1: the offerer controls). */
  readonly role: string;
  readonly pairs: readonly IcewirePairCounters[];
  readonly dropped: Readonly<Record<string, number>>;
}

/** Every line the child prints. */
export type IcewirePeerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'sdp'; readonly id: number; readonly sdp: string }
  | { readonly type: 'ok'; readonly id: number }
  | { readonly type: 'stats'; readonly id: number; readonly stats: IcewireStatsReport | null }
  | { readonly type: 'stream'; readonly id: number; readonly sent: number; readonly refused: number; readonly refusedMs: number }
  | { readonly type: 'state'; readonly state: string; readonly t: number; readonly at: number }
  | { readonly type: 'selected'; readonly local: IcewireCandidateInfo; readonly remote: IcewireCandidateInfo; readonly t: number; readonly at: number }
  | { readonly type: 'warning'; readonly message: string }
  | { readonly type: 'error'; readonly id?: number; readonly message: string };

type PeerCommand =
  | { readonly cmd: 'answer'; readonly id: number; readonly offer: string; readonly appSdp: string; readonly options?: IcewireSessionOptions }
  | { readonly cmd: 'offer'; readonly id: number; readonly appSdp: string; readonly options?: IcewireSessionOptions }
  | { readonly cmd: 'remote-answer'; readonly id: number; readonly answer: string }
  | { readonly cmd: 'stats'; readonly id: number }
  | { readonly cmd: 'restart-offer'; readonly id: number; readonly appSdp: string }
  | { readonly cmd: 'stream-start'; readonly id: number; readonly periodMs: number }
  | { readonly cmd: 'stream-stop'; readonly id: number }
  | { readonly cmd: 'quit'; readonly id: number };

/** The JSON-safe `IceSdpSessionOptions` the child accepts (host gathering on one address, 127.0.0.1 by default). */
export interface IcewireSessionOptions {
  readonly rtcpComponents?: 1 | 2;
  readonly nomination?: 'regular' | 'aggressive';
  /** The one host address to gather (default 127.0.0.1). */
  readonly hostAddress?: string;
  /** Hide it behind an mDNS name and resolve the peer's (`IceAgentOptions.mdns`, on `hostAddress`'s interface). */
  readonly mdns?: boolean;
  /** ICE-TCP: transports and candidate kinds to gather (`IceAgentOptions.transports`, `tcpTypes`). */
  readonly transports?: readonly ('udp' | 'tcp')[];
  readonly tcpTypes?: readonly ('active' | 'passive')[];
  /** ICE-lite (`IceAgentOptions.lite`). */
  readonly lite?: boolean;
}

/** icewire (an `IceSdpSession` on 127.0.0.1) in a child process inside the namespace. */
export class IcewirePeer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #dir: string;
  readonly messages: IcewirePeerMessage[] = [];
  readonly #waiters: (() => void)[] = [];
  #stderr = '';
  #nextId = 1;
  #exited = false;

  private constructor(child: ChildProcessWithoutNullStreams, dir: string) {
    this.#child = child;
    this.#dir = dir;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let m: IcewirePeerMessage;
      try {
        m = JSON.parse(line) as IcewirePeerMessage;
      } catch {
        m = { type: 'warning', message: `raw: ${line}` };
      }
      this.messages.push(m);
      for (const w of this.#waiters.splice(0)) w();
    });
    child.stderr.on('data', (b: Buffer) => {
      if (this.#stderr.length < 20_000) this.#stderr += b.toString();
    });
    child.once('exit', () => {
      this.#exited = true;
      liveChildren.delete(child);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Starts the child in `ns`; it exits by itself after `hardTimeoutMs`. Resolves once it is ready. */
  static async start(ns: { readonly name: string }, hardTimeoutMs = 25_000): Promise<IcewirePeer> {
    const dir = mkdtempSync(join(tmpdir(), 'icewire-peer-'));
    const self = fileURLToPath(import.meta.url);
    const child = spawn(
      'ip',
      ['netns', 'exec', ns.name, process.execPath, ...tsChildNodeArgs(dir), self, '--icewire-peer', String(hardTimeoutMs)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    liveChildren.add(child);
    const peer = new IcewirePeer(child, dir);
    try {
      await peer.#waitFor((m) => m.type === 'ready', 15_000, 'icewire child ready');
    } catch (e) {
      await peer.close();
      throw e;
    }
    return peer;
  }

  /** What the child wrote to stderr (diagnostics). */
  get stderr(): string {
    return this.#stderr;
  }

  /** Applies the browser's offer and returns icewire's answer around `appSdp`. */
  async answer(offer: string, appSdp: string, options?: IcewireSessionOptions): Promise<string> {
    return this.#sdp({ cmd: 'answer', id: this.#nextId++, offer, appSdp, ...(options ? { options } : {}) });
  }

  /** Creates icewire's offer around `appSdp`. */
  async offer(appSdp: string, options?: IcewireSessionOptions): Promise<string> {
    return this.#sdp({ cmd: 'offer', id: this.#nextId++, appSdp, ...(options ? { options } : {}) });
  }

  /** `restart()` then a re-offer around `appSdp` (RFC 8445 §9: the restart travels in our offer). */
  async restartOffer(appSdp: string): Promise<string> {
    return this.#sdp({ cmd: 'restart-offer', id: this.#nextId++, appSdp });
  }

  /** Starts sending a 1000-byte datagram every `periodMs` on the selected pair. */
  async streamStart(periodMs: number): Promise<void> {
    const id = this.#nextId++;
    this.#send({ cmd: 'stream-start', id, periodMs });
    await this.#reply(id);
  }

  /** Stops sending: how many went, how many the agent refused, and the longest run of refusals (ms). */
  async streamStop(): Promise<Extract<IcewirePeerMessage, { type: 'stream' }>> {
    const id = this.#nextId++;
    this.#send({ cmd: 'stream-stop', id });
    const m = await this.#reply(id);
    if (m.type !== 'stream') throw new Error(`icewire child: expected stream, got ${JSON.stringify(m)}`);
    return m;
  }

  /** Applies the browser's answer. */
  async remoteAnswer(answer: string): Promise<void> {
    const id = this.#nextId++;
    this.#send({ cmd: 'remote-answer', id, answer });
    await this.#reply(id);
  }

  /** icewire's getStats(), pairs flattened. */
  async stats(): Promise<IcewireStatsReport | null> {
    const id = this.#nextId++;
    this.#send({ cmd: 'stats', id });
    const m = await this.#reply(id);
    return m.type === 'stats' ? m.stats : null;
  }

  /** icewire agent states so far. */
  states(): string[] {
    return this.messages.flatMap((m) => (m.type === 'state' ? [m.state] : []));
  }

  /** The last selected pair icewire reported. */
  selected(): Extract<IcewirePeerMessage, { type: 'selected' }> | undefined {
    return this.messages.filter((m): m is Extract<IcewirePeerMessage, { type: 'selected' }> => m.type === 'selected').at(-1);
  }

  /** Resolves when icewire's agent is `connected`/`completed` (and has a selected pair). */
  async waitUp(timeoutMs: number): Promise<void> {
    await this.#waitFor(
      (m) => m.type === 'state' && (m.state === 'connected' || m.state === 'completed'),
      timeoutMs,
      'icewire connected',
    );
    await this.#waitFor((m) => m.type === 'selected', timeoutMs, 'icewire selected pair');
  }

  /** Resolves when icewire's agent reaches `state`. */
  async waitState(state: string, timeoutMs: number): Promise<void> {
    await this.#waitFor((m) => m.type === 'state' && m.state === state, timeoutMs, `icewire ${state}`);
  }

  /** Closes the agent, ends the child (SIGKILL if it lingers) and removes its files. Idempotent. */
  async close(): Promise<void> {
    if (!this.#exited) {
      const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
      try {
        this.#send({ cmd: 'quit', id: this.#nextId++ });
      } catch {
        // stdin already closed
      }
      await withTimeout(exited, 3_000, 'icewire child exit').catch(() => {
        this.#child.kill('SIGKILL');
        return withTimeout(exited, 3_000, 'icewire child kill').catch(() => undefined);
      });
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #send(c: PeerCommand): void {
    if (this.#exited || !this.#child.stdin.writable) throw new Error(`icewire child gone; stderr: ${this.#stderr.slice(-2000)}`);
    this.#child.stdin.write(`${JSON.stringify(c)}\n`);
  }

  async #sdp(c: Extract<PeerCommand, { appSdp: string }>): Promise<string> {
    this.#send(c);
    const m = await this.#reply(c.id);
    if (m.type !== 'sdp') throw new Error(`icewire child: expected sdp, got ${JSON.stringify(m)}`);
    return m.sdp;
  }

  async #reply(id: number): Promise<IcewirePeerMessage> {
    const m = await this.#waitFor((x) => 'id' in x && x.id === id, 10_000, `icewire reply ${id}`);
    if (m.type === 'error') throw new Error(`icewire child: ${m.message}`);
    return m;
  }

  #waitFor(pred: (m: IcewirePeerMessage) => boolean, timeoutMs: number, what: string): Promise<IcewirePeerMessage> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout (${timeoutMs} ms): ${what}; stderr: ${this.#stderr.slice(-2000)}`)), timeoutMs);
      const check = (): void => {
        const found = this.messages.find(pred);
        if (found) {
          clearTimeout(t);
          resolve(found);
        } else if (this.#exited) {
          clearTimeout(t);
          reject(new Error(`icewire child exited before: ${what}; stderr: ${this.#stderr.slice(-2000)}`));
        } else this.#waiters.push(check);
      };
      check();
    });
  }
}

/** The child's main: an IceSdpSession on 127.0.0.1 driven by JSON commands on stdin. */
async function peerMain(hardTimeoutMs: number): Promise<void> {
  const { IceSdpSession } = await import('../../src/node/sdp-session.js');
  const out = (m: IcewirePeerMessage): void => {
    process.stdout.write(`${JSON.stringify(m)}\n`);
  };
  const t0 = Date.now();
  const info = (c: { address: string; port: number; type: string; transport: string }): IcewireCandidateInfo => ({
    address: c.address,
    port: c.port,
    type: c.type,
    transport: c.transport,
  });
  let session: InstanceType<typeof IceSdpSession> | undefined;
  // The session is made at the first offer/answer command, with that command's options.
  const open = (options: IcewireSessionOptions = {}): InstanceType<typeof IceSdpSession> => {
    if (session) return session;
    const { hostAddress = '127.0.0.1', mdns, ...rest } = options;
    const s = new IceSdpSession({
      ...rest,
      includeLoopback: hostAddress === '127.0.0.1',
      addressFilter: (a: string) => a === hostAddress,
      ...(mdns ? { mdns: { interfaceAddress: hostAddress } } : {}),
    });
    s.on('statechange', (state) => out({ type: 'state', state, t: Date.now() - t0, at: Date.now() }));
    s.on('warning', (message) => out({ type: 'warning', message }));
    s.on('selectedcandidatepairchange', (pair) => out({ type: 'selected', local: info(pair.local), remote: info(pair.remote), t: Date.now() - t0, at: Date.now() }));
    session = s;
    return s;
  };
  let stream: { timer: NodeJS.Timeout; sent: number; refused: number; refusedSince: number | undefined; refusedMs: number } | undefined;
  let quitting = false;
  const quit = async (): Promise<void> => {
    if (quitting) return;
    quitting = true;
    await session?.close().catch(() => undefined);
    process.exit(0);
  };
  setTimeout(() => void quit(), hardTimeoutMs).unref();
  process.stdin.on('end', () => void quit());
  createInterface({ input: process.stdin }).on('line', (line) => {
    void (async () => {
      let c: PeerCommand;
      try {
        c = JSON.parse(line) as PeerCommand;
      } catch {
        out({ type: 'error', message: `bad command: ${line}` });
        return;
      }
      try {
        switch (c.cmd) {
          case 'answer': {
            const s = open(c.options);
            await s.setRemoteDescription(c.offer, 'offer');
            out({ type: 'sdp', id: c.id, sdp: await s.createAnswer(c.appSdp) });
            break;
          }
          case 'offer':
            out({ type: 'sdp', id: c.id, sdp: await open(c.options).createOffer(c.appSdp) });
            break;
          case 'restart-offer': {
            const s = open();
            s.restart();
            out({ type: 'sdp', id: c.id, sdp: await s.createOffer(c.appSdp) });
            break;
          }
          case 'stream-start': {
            const st = { sent: 0, refused: 0, refusedSince: undefined as number | undefined, refusedMs: 0, timer: undefined as unknown as NodeJS.Timeout };
            // First byte 0x42: neither STUN, DTLS nor RTP (RFC 7983); 1000 bytes, so that the browser's byte count
            // tells these from the odd STUN message.
            const payload = Buffer.alloc(1000, 0x42);
            st.timer = setInterval(() => {
              const ok = session?.agent()?.send(payload) ?? false;
              const now = Date.now();
              if (ok) {
                st.sent++;
                if (st.refusedSince !== undefined) st.refusedMs = Math.max(st.refusedMs, now - st.refusedSince);
                st.refusedSince = undefined;
              } else {
                st.refused++;
                st.refusedSince ??= now;
              }
            }, c.periodMs);
            stream = st;
            out({ type: 'ok', id: c.id });
            break;
          }
          case 'stream-stop': {
            const st = stream;
            stream = undefined;
            if (st) clearInterval(st.timer);
            const refusedMs = st?.refusedSince !== undefined ? Math.max(st.refusedMs, Date.now() - st.refusedSince) : (st?.refusedMs ?? 0);
            out({ type: 'stream', id: c.id, sent: st?.sent ?? 0, refused: st?.refused ?? 0, refusedMs });
            break;
          }
          case 'remote-answer':
            await open().setRemoteDescription(c.answer, 'answer');
            out({ type: 'ok', id: c.id });
            break;
          case 'stats': {
            const s = session?.agent()?.getStats();
            out({
              type: 'stats',
              id: c.id,
              stats: s
                ? {
                    role: session?.agent()?.role ?? 'none',
                    dropped: s.dropped,
                    pairs: s.pairs.map((p) => ({
                      local: info(p.local),
                      remote: info(p.remote),
                      state: p.state,
                      nominated: p.nominated,
                      valid: p.valid,
                      requestsSent: p.requestsSent,
                      requestsReceived: p.requestsReceived,
                      responsesSent: p.responsesSent,
                      responsesReceived: p.responsesReceived,
                    })),
                  }
                : null,
            });
            break;
          }
          case 'quit':
            await quit();
            break;
        }
      } catch (e) {
        out({ type: 'error', id: c.id, message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      }
    })();
  });
  out({ type: 'ready' });
}

const peerFlag = process.argv.indexOf('--icewire-peer');
if (peerFlag >= 0 && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void peerMain(Number(process.argv[peerFlag + 1] ?? 25_000));
}
