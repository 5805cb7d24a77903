/**
 * Test helper for the Chromium mux interop test: ICE-lite `IceSdpSession`s sharing ONE `IceUdpMux` port, in a child
 * Node process inside the test's loopback-only namespace (see chromium.ts for why a namespace and a child). The
 * child speaks JSON lines on stdin/stdout: it binds the mux on 127.0.0.1 at start and reports its port, answers
 * offers on a session per index, and reports each session's states, selected pairs and received data.
 *
 * Bounded like chromium.ts: every wait has a timeout, the child exits by itself after `hardTimeoutMs`, and
 * `close()` ends it (SIGKILL if it lingers).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import type { ChromiumPeer } from './chromium.js';
import { tsChildNodeArgs } from './ts-child.js';

/** One side of a pair as the child reports it. */
export interface MuxCandidateInfo {
  readonly address: string;
  readonly port: number;
  readonly type: string;
}

/** What one session (one browser peer connection) saw on the mux. */
export interface MuxSessionReport {
  readonly index: number;
  readonly state: string;
  readonly selected: { readonly local: MuxCandidateInfo; readonly remote: MuxCandidateInfo } | undefined;
  /** Datagrams of application data (here: the browser's DTLS) received, by first byte, and their sources. */
  readonly data: { readonly count: number; readonly dtls: number; readonly from: readonly string[] };
  /**
   * Binding requests received and answered on the selected pair, as its stats count them (a lite agent's counters
   * start after the check that nominated the pair, so these are the browser's consent checks, RFC 7675).
   */
  readonly requestsReceived: number;
  readonly responsesSent: number;
}

/** The mux's side of a `stats` reply. */
export interface MuxReport {
  readonly port: number;
  readonly agents: number;
  readonly routed: number;
  readonly dropped: Readonly<Record<string, number>>;
  readonly sessions: readonly MuxSessionReport[];
}

type MuxPeerMessage =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'sdp'; readonly id: number; readonly sdp: string }
  | { readonly type: 'stats'; readonly id: number; readonly stats: MuxReport }
  | { readonly type: 'state'; readonly index: number; readonly state: string }
  | { readonly type: 'warning'; readonly index: number; readonly message: string }
  | { readonly type: 'error'; readonly id?: number; readonly message: string };

type MuxPeerCommand =
  | { readonly cmd: 'answer'; readonly id: number; readonly index: number; readonly offer: string; readonly appSdp: string }
  | { readonly cmd: 'stats'; readonly id: number }
  | { readonly cmd: 'quit'; readonly id: number };

const liveChildren = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
});

/** Lite icewire sessions on one `IceUdpMux`, in a child process inside the namespace. */
export class IcewireMuxPeer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #dir: string;
  readonly messages: MuxPeerMessage[] = [];
  readonly #waiters: (() => void)[] = [];
  #stderr = '';
  #nextId = 1;
  #exited = false;
  /** The mux's port on 127.0.0.1. */
  port = 0;

  private constructor(child: ChildProcessWithoutNullStreams, dir: string) {
    this.#child = child;
    this.#dir = dir;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let m: MuxPeerMessage;
      try {
        m = JSON.parse(line) as MuxPeerMessage;
      } catch {
        m = { type: 'warning', index: -1, message: `raw: ${line}` };
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

  /**
   * Starts the child in `ns` (it binds the mux: an `IceUdpMux`, or with `transport` 'tcp' an `IceTcpMux` whose
   * sessions gather ICE-TCP candidates only); it exits by itself after `hardTimeoutMs`.
   */
  static async start(ns: { readonly name: string }, hardTimeoutMs = 25_000, transport: 'udp' | 'tcp' = 'udp'): Promise<IcewireMuxPeer> {
    const dir = mkdtempSync(join(tmpdir(), 'icewire-mux-peer-'));
    const self = fileURLToPath(import.meta.url);
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...tsChildNodeArgs(dir), self, '--icewire-mux-peer', String(hardTimeoutMs), transport], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    liveChildren.add(child);
    const peer = new IcewireMuxPeer(child, dir);
    try {
      const ready = await peer.#waitFor((m) => m.type === 'ready', 15_000, 'icewire mux child ready');
      if (ready.type === 'ready') peer.port = ready.port;
    } catch (e) {
      await peer.close();
      throw e;
    }
    return peer;
  }

  /** Applies a browser's offer on session `index` (made at its first offer) and returns the answer around `appSdp`. */
  async answer(index: number, offer: string, appSdp: string): Promise<string> {
    const m = await this.#request({ cmd: 'answer', id: this.#nextId++, index, offer, appSdp });
    if (m.type !== 'sdp') throw new Error(`icewire mux child: expected sdp, got ${JSON.stringify(m)}`);
    return m.sdp;
  }

  /** The mux's counters and what every session saw. */
  async stats(): Promise<MuxReport> {
    const m = await this.#request({ cmd: 'stats', id: this.#nextId++ });
    if (m.type !== 'stats') throw new Error(`icewire mux child: expected stats, got ${JSON.stringify(m)}`);
    return m.stats;
  }

  /** Resolves when session `index` is connected or completed. */
  async waitUp(index: number, timeoutMs: number): Promise<void> {
    await this.#waitFor((m) => m.type === 'state' && m.index === index && (m.state === 'connected' || m.state === 'completed'), timeoutMs, `session ${index} up`);
  }

  /** Warnings the sessions reported. */
  warnings(): string[] {
    return this.messages.flatMap((m) => (m.type === 'warning' ? [`${m.index}: ${m.message}`] : []));
  }

  /** Ends the child (closing its sessions, then the mux), SIGKILL if it lingers, and removes its files. */
  async close(): Promise<void> {
    if (!this.#exited) {
      const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
      try {
        this.#send({ cmd: 'quit', id: this.#nextId++ });
      } catch {
        // stdin already closed
      }
      const timeout = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
      if ((await timeout(exited, 3_000)) === 'timeout') {
        this.#child.kill('SIGKILL');
        await timeout(exited, 3_000);
      }
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #send(c: MuxPeerCommand): void {
    if (this.#exited || !this.#child.stdin.writable) throw new Error(`icewire mux child gone; stderr: ${this.#stderr.slice(-2000)}`);
    this.#child.stdin.write(`${JSON.stringify(c)}\n`);
  }

  async #request(c: MuxPeerCommand): Promise<MuxPeerMessage> {
    this.#send(c);
    const m = await this.#waitFor((x) => 'id' in x && x.id === c.id, 10_000, `icewire mux reply ${c.id}`);
    if (m.type === 'error') throw new Error(`icewire mux child: ${m.message}`);
    return m;
  }

  #waitFor(pred: (m: MuxPeerMessage) => boolean, timeoutMs: number, what: string): Promise<MuxPeerMessage> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout (${timeoutMs} ms): ${what}; stderr: ${this.#stderr.slice(-2000)}`)), timeoutMs);
      const check = (): void => {
        const found = this.messages.find(pred);
        if (found) {
          clearTimeout(t);
          resolve(found);
        } else if (this.#exited) {
          clearTimeout(t);
          reject(new Error(`icewire mux child exited before: ${what}; stderr: ${this.#stderr.slice(-2000)}`));
        } else this.#waiters.push(check);
      };
      check();
    });
  }
}

/** The child's main: an `IceUdpMux` (or `IceTcpMux`) on 127.0.0.1 and a lite `IceSdpSession` on it per index. */
async function muxPeerMain(hardTimeoutMs: number, transport: string): Promise<void> {
  const { IceSdpSession } = await import('../../src/node/sdp-session.js');
  const { IceUdpMux } = await import('../../src/node/udp-mux.js');
  const { IceTcpMux } = await import('../../src/node/tcp-mux.js');
  const out = (m: MuxPeerMessage): void => {
    process.stdout.write(`${JSON.stringify(m)}\n`);
  };
  const mux = transport === 'tcp' ? await IceTcpMux.listen({ addresses: ['127.0.0.1'] }) : await IceUdpMux.bind({ addresses: ['127.0.0.1'] });
  const sessionOptions = mux instanceof IceTcpMux ? { tcpMux: mux, transports: ['tcp'] as const } : { udpMux: mux };
  interface Entry {
    readonly session: InstanceType<typeof IceSdpSession>;
    state: string;
    data: { count: number; dtls: number; from: Set<string> };
    listening: boolean;
  }
  const sessions = new Map<number, Entry>();
  const info = (c: { address: string; port: number; type: string }): MuxCandidateInfo => ({ address: c.address, port: c.port, type: c.type });
  let quitting = false;
  const quit = async (): Promise<void> => {
    if (quitting) return;
    quitting = true;
    await Promise.all([...sessions.values()].map((e) => e.session.close().catch(() => undefined)));
    await mux.close().catch(() => undefined);
    process.exit(0);
  };
  setTimeout(() => void quit(), hardTimeoutMs).unref();
  process.stdin.on('end', () => void quit());
  const report = (): MuxReport => {
    const st = mux.stats;
    return {
      port: mux.addresses[0]!.port,
      agents: mux.agentCount,
      routed: st.routed,
      dropped: st.dropped,
      sessions: [...sessions].map(([index, e]): MuxSessionReport => {
        const agent = e.session.agent();
        const selected = agent?.getSelectedCandidatePair();
        const onSelected = selected
          ? agent?.getStats()?.pairs.find((p) => p.local.port === selected.local.port && p.remote.address === selected.remote.address && p.remote.port === selected.remote.port)
          : undefined;
        return {
          index,
          state: e.state,
          selected: selected ? { local: info(selected.local), remote: info(selected.remote) } : undefined,
          data: { count: e.data.count, dtls: e.data.dtls, from: [...e.data.from] },
          requestsReceived: onSelected?.requestsReceived ?? 0,
          responsesSent: onSelected?.responsesSent ?? 0,
        };
      }),
    };
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    void (async () => {
      let c: MuxPeerCommand;
      try {
        c = JSON.parse(line) as MuxPeerCommand;
      } catch {
        out({ type: 'error', message: `bad command: ${line}` });
        return;
      }
      try {
        switch (c.cmd) {
          case 'answer': {
            const index = c.index;
            let e = sessions.get(index);
            if (!e) {
              const session = new IceSdpSession({ ...sessionOptions, lite: true });
              const entry: Entry = { session, state: 'new', data: { count: 0, dtls: 0, from: new Set() }, listening: false };
              session.on('statechange', (state) => {
                entry.state = state;
                out({ type: 'state', index, state });
              });
              session.on('warning', (message) => out({ type: 'warning', index, message }));
              sessions.set(index, entry);
              e = entry;
            }
            await e.session.setRemoteDescription(c.offer, 'offer');
            const sdp = await e.session.createAnswer(c.appSdp);
            const data = e.data;
            const agent = e.session.agent();
            // The agent exists once the answer is made, before the browser has it: no datagram is missed.
            if (agent && !e.listening) {
              e.listening = true;
              agent.on('data', (d, _component, from) => {
                data.count++;
                // DTLS records start with 20..63 (RFC 7983 §7); a ClientHello is a handshake record, 22.
                if (d[0] === 22) data.dtls++;
                data.from.add(`${from.address}:${from.port}`);
              });
            }
            out({ type: 'sdp', id: c.id, sdp });
            break;
          }
          case 'stats':
            out({ type: 'stats', id: c.id, stats: report() });
            break;
          case 'quit':
            await quit();
            break;
        }
      } catch (err) {
        out({ type: 'error', id: c.id, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
      }
    })();
  });
  out({ type: 'ready', port: mux.addresses[0]!.port });
}

const peerFlag = process.argv.indexOf('--icewire-mux-peer');
if (peerFlag >= 0 && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void muxPeerMain(Number(process.argv[peerFlag + 1] ?? 25_000), process.argv[peerFlag + 2] ?? 'udp');
}

/** A syntactically valid sha-256 fingerprint: nothing here completes DTLS, so no certificate stands behind it. */
const FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 29 + 3) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');

/** A data-channel section (RFC 8841) answering as the DTLS server, so that the browser sends the first DTLS record. */
export function dataChannelAnswer(mid: string): string {
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

/** The candidates of a description (`tcpType` undefined for UDP ones). */
export function candidates(sdp: string): { transport: string; address: string; port: number; type: string; tcpType: string | undefined }[] {
  return [...sdp.matchAll(/^a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)(?: tcptype (\S+))?/gm)].map((m) => ({
    transport: m[1]!.toLowerCase(),
    address: m[2]!,
    port: Number(m[3]),
    type: m[4]!,
    tcpType: m[5],
  }));
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Signalling, one peer connection after the other: each page's offer, our answer on the mux. Returns the answers. */
export async function answerEveryPage(pages: readonly ChromiumPeer[], mux: IcewireMuxPeer): Promise<string[]> {
  const answers: string[] = [];
  for (const [i, page] of pages.entries()) {
    const offer = await page.createOffer();
    const mid = /^a=mid:(\S+)/m.exec(offer)![1]!;
    const answer = await mux.answer(i, offer, dataChannelAnswer(mid));
    await page.setAnswer(answer);
    answers.push(answer);
  }
  return answers;
}

/**
 * Waits until every page and its agent are up, then asserts that each browser pair ends at the mux port, each agent
 * selected its own browser's candidate, and the browser's DTLS and consent checks reached that agent only. Returns the
 * mux's report and a context string for the caller's own assertions.
 */
export async function expectEachPeerOnItsOwnAgent(pages: readonly ChromiumPeer[], mux: IcewireMuxPeer, connectMs: number): Promise<{ report: MuxReport; context: string }> {
  const peers = pages.length;
  await Promise.all(pages.map((p, i) => Promise.all([p.waitIceConnected(connectMs), mux.waitUp(i, connectMs)])));

  // Each browser pair ends at the mux port (its own, from its own port); each agent selected its own browser's candidate.
  const browserPairs = await Promise.all(pages.map((p) => p.selectedPair()));
  const browserPorts = browserPairs.map((p) => p?.local.port);
  expect(new Set(browserPorts).size).toBe(peers);
  for (const p of browserPairs) expect(p?.remote).toMatchObject({ address: '127.0.0.1', port: mux.port });

  // The browsers' DTLS (ClientHello, retransmitted while unanswered) arrives, each at its own agent only, and their
  // consent checks (RFC 7675, about one a second at first) reach that agent and are answered.
  let report: MuxReport | undefined;
  const settled = async (): Promise<boolean> => {
    report = await mux.stats();
    return report.sessions.length === peers && report.sessions.every((s) => s.data.dtls > 0 && s.selected !== undefined && s.responsesSent > 0);
  };
  await until(settled, 8_000);
  const context = JSON.stringify({ report, browserPairs, warnings: mux.warnings() });
  expect(report!.agents, context).toBe(peers);
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
  return { report: report!, context };
}
