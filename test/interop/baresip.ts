/**
 * Test helper for the baresip interop test: a real softphone (Debian `baresip-core` 1.0, its ICE from libre through
 * the `ice` medianat module) calls icewire's SDP binding over SIP, and icewire calls it.
 *
 * Why a namespace with a veth pair: baresip's ICE skips loopback interfaces, and the network rules forbid any other
 * address of this machine. So the test makes a namespace holding both ends of one veth pair (10.0.0.1 for icewire,
 * 10.0.0.2 for baresip, links and `lo` up): nothing can leave it. Both addresses are local to the namespace, so
 * baresip's ICE gathers a host candidate on each of them; icewire gathers on 10.0.0.1 only.
 *
 * icewire runs in a child Node process inside the namespace (`ip netns exec`), which is this very file started with
 * `--icewire-sip`: a minimal SIP user agent over UDP (INVITE / 100 / 180 / 200 / ACK / BYE, re-INVITE answered)
 * carrying the bodies of an `IceSdpSession`, plus an RTP sender (PCMU frames it builds itself) and a counter of the
 * RTP and RTCP datagrams (RFC 5761 §4: payload type 192-223 is RTCP) received on each component. It reports JSON
 * lines on stdout; the last one, `done`, is the call's report.
 *
 * Everything is bounded: every wait has a timeout, the child and baresip quit by themselves after a hard limit, both
 * are killed on `close()` (SIGKILLed if the test process exits first), and the namespace is removed by the test
 * (stale namespaces of dead test processes, same prefix, are removed when a new one is created).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tsChildNodeArgs } from './ts-child.js';

/** Debian's baresip (package `baresip-core`). */
export const BARESIP_PATH = '/usr/bin/baresip';
/** Where Debian puts its modules. */
export const BARESIP_MODULES = '/usr/lib/baresip/modules';

/** icewire's end of the veth pair. */
export const ICEWIRE_ADDRESS = '10.0.0.1';
/** baresip's end of the veth pair. */
export const BARESIP_ADDRESS = '10.0.0.2';
/** icewire's SIP port. */
export const ICEWIRE_SIP_PORT = 5070;
/** baresip's SIP port. */
export const BARESIP_SIP_PORT = 5060;

const NS_PREFIX = 'icewire-bs-';

/** Whether the namespace can be made here; `reason` says why not. */
export type NamespaceAvailability = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Root and `ip netns` (iproute2) are needed; nothing else decides whether the test runs. */
export function checkNamespaces(): NamespaceAvailability {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'network namespaces need root' };
  const ip = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ip.status !== 0) return { ok: false, reason: `ip netns unavailable: ${ip.error?.message ?? ip.stderr.trim()}` };
  return { ok: true };
}

/** Whether baresip and the modules the test loads are installed; `reason` says what is missing. */
export function checkBaresip(): NamespaceAvailability {
  if (!existsSync(BARESIP_PATH)) return { ok: false, reason: `${BARESIP_PATH} missing (apt-get install baresip-core)` };
  for (const m of ['ice', 'g711', 'ausine', 'aubridge', 'account', 'menu']) {
    if (!existsSync(join(BARESIP_MODULES, `${m}.so`))) return { ok: false, reason: `baresip module ${m}.so missing` };
  }
  return { ok: true };
}

function ip(args: readonly string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A namespace holding both ends of one veth pair (`iw0` 10.0.0.1/24, `bs0` 10.0.0.2/24), and `lo`, all up. */
export class VethNamespace {
  readonly name: string;
  /** The veth end baresip binds (its ICE still sees both). */
  readonly baresipInterface = 'bs0';
  #removed = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates the namespace; first removes namespaces of this prefix left behind by test processes that are gone. */
  static create(): VethNamespace {
    const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const pid = Number(/^icewire-bs-(\d+)-/.exec(name)?.[1]);
      if (name.startsWith(NS_PREFIX) && Number.isInteger(pid) && !alive(pid)) spawnSync('ip', ['netns', 'del', name]);
    }
    const name = `${NS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
    ip(['netns', 'add', name]);
    const ns = new VethNamespace(name);
    liveNamespaces.add(ns);
    try {
      // Both ends are created inside the namespace: no interface ever appears outside it.
      ip(['-n', name, 'link', 'add', 'iw0', 'type', 'veth', 'peer', 'name', 'bs0']);
      ip(['-n', name, 'addr', 'add', `${ICEWIRE_ADDRESS}/24`, 'dev', 'iw0']);
      ip(['-n', name, 'addr', 'add', `${BARESIP_ADDRESS}/24`, 'dev', 'bs0']);
      for (const dev of ['lo', 'iw0', 'bs0']) ip(['-n', name, 'link', 'set', dev, 'up']);
    } catch (e) {
      ns.remove();
      throw e;
    }
    return ns;
  }

  /** Removes the namespace (and the veth pair with it). Idempotent. */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    liveNamespaces.delete(this);
    spawnSync('ip', ['netns', 'del', this.name]);
  }
}

const liveNamespaces = new Set<VethNamespace>();
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

/** Kills a child (SIGTERM, then SIGKILL after `graceMs`) and resolves once it exited. */
async function stopChild(child: ChildProcessWithoutNullStreams, exited: Promise<void>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await withTimeout(exited, graceMs, 'child exit').catch(() => {
    child.kill('SIGKILL');
    return withTimeout(exited, 3_000, 'child kill').catch(() => undefined);
  });
}

// ---- baresip ---------------------------------------------------------------------------------------------------

/** Options of {@link BaresipPeer.start}. */
export interface BaresipOptions {
  /** baresip's `rtcp_mux` setting: it offers `a=rtcp-mux`, and accepts it in an offer, only when on. */
  readonly rtcpMux: boolean;
  /** A SIP URI to dial at start (`-e /dial ...`); without it baresip waits and auto-answers. */
  readonly dial?: string;
  /** baresip quits by itself after this many seconds (`-t`). Default 20. */
  readonly quitAfterSec?: number;
}

/**
 * baresip in the namespace, with a generated config directory: SIP on 10.0.0.2:5060, no registration, ICE as
 * medianat, PCMU only, a sine tone as source and the in-memory `aubridge` as player (no sound device), RTP stats
 * printed at the end of each call, auto-answer.
 */
export class BaresipPeer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #dir: string;
  readonly #exited: Promise<void>;
  readonly #lines: string[] = [];
  readonly #waiters: (() => void)[] = [];
  #partial = '';

  private constructor(child: ChildProcessWithoutNullStreams, dir: string) {
    this.#child = child;
    this.#dir = dir;
    this.#exited = new Promise((resolve) =>
      child.once('exit', () => {
        liveChildren.delete(child);
        for (const w of this.#waiters.splice(0)) w();
        resolve();
      }),
    );
    const onData = (b: Buffer): void => {
      this.#partial += b.toString();
      const parts = this.#partial.split(/\r?\n/);
      this.#partial = parts.pop() ?? '';
      // The menu echoes typed commands with backspaces; bounded so a runaway log cannot eat memory.
      if (this.#lines.length < 5_000) this.#lines.push(...parts);
      for (const w of this.#waiters.splice(0)) w();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  }

  /** Writes the config directory and starts baresip in `ns`. */
  static start(ns: VethNamespace, options: BaresipOptions): BaresipPeer {
    const dir = mkdtempSync(join(tmpdir(), 'icewire-baresip-'));
    const config = [
      'poll_method epoll',
      `sip_listen ${BARESIP_ADDRESS}:${BARESIP_SIP_PORT}`,
      `net_interface ${ns.baresipInterface}`,
      'call_local_timeout 10',
      'audio_player aubridge,icewire',
      'audio_alert aubridge,icewire',
      'audio_source ausine,440',
      'ausrc_srate 48000',
      'ausrc_channels 2',
      `rtcp_mux ${options.rtcpMux ? 'yes' : 'no'}`,
      'rtp_stats yes',
      'jitter_buffer_delay 1-5',
      `module_path ${BARESIP_MODULES}`,
      'module g711.so',
      'module ausine.so',
      'module aubridge.so',
      'module ice.so',
      'module_tmp account.so',
      'module_app menu.so',
      'ice_debug no',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'config'), config);
    // No registration (regint=0), ICE for media, no media encryption, PCMU, answer incoming calls at once.
    writeFileSync(join(dir, 'accounts'), `<sip:baresip@${BARESIP_ADDRESS}>;regint=0;medianat=ice;answermode=auto;audio_codecs=PCMU\n`);
    writeFileSync(join(dir, 'contacts'), '');
    const args = ['netns', 'exec', ns.name, BARESIP_PATH, '-4', '-v', '-f', dir, '-t', String(options.quitAfterSec ?? 20)];
    if (options.dial !== undefined) args.push('-e', `/dial ${options.dial}`);
    // `ip netns exec` execs baresip in place, so the pid is baresip's own.
    const child = spawn('ip', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    liveChildren.add(child);
    return new BaresipPeer(child, dir);
  }

  /** Every line baresip printed so far. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /** The whole log so far, for failure messages. */
  log(): string {
    return [...this.#lines, this.#partial].join('\n');
  }

  /** Resolves with the first line matching `re`; rejects on timeout or when baresip exits first. */
  waitLine(re: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout (${timeoutMs} ms) waiting for baresip ${re}; log:\n${this.log().slice(-4000)}`)), timeoutMs);
      const check = (): void => {
        const found = this.#lines.find((l) => re.test(l));
        if (found !== undefined) {
          clearTimeout(t);
          resolve(found);
        } else if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
          clearTimeout(t);
          reject(new Error(`baresip exited before ${re}; log:\n${this.log().slice(-4000)}`));
        } else this.#waiters.push(check);
      };
      check();
    });
  }

  /** Ends baresip (SIGTERM, SIGKILL if it lingers) and removes its config directory. Idempotent. */
  async close(): Promise<void> {
    await stopChild(this.#child, this.#exited, 3_000);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/**
 * The RTP statistics baresip prints at the end of a call (`rtp_stats yes`): the `packets:` row of its table, whose
 * columns are sent and received. Undefined when the table is not (yet) in the log.
 */
export function baresipPacketCounts(lines: readonly string[]): { sent: number; received: number } | undefined {
  for (const l of lines) {
    const m = /^\s*packets:\s+(\d+)\s+(\d+)/.exec(l);
    if (m) return { sent: Number(m[1]), received: Number(m[2]) };
  }
  return undefined;
}

// ---- icewire with its SIP user agent, in a child process -------------------------------------------------------

/** Options of the icewire child. */
export interface IcewireSipOptions {
  /** `uas`: wait for baresip's INVITE and answer; `uac`: call baresip. */
  readonly role: 'uas' | 'uac';
  /** Offer (uac) or accept (uas, when offered) `a=rtcp-mux`. */
  readonly rtcpMux: boolean;
  /** Send RTP for at least this long once ICE is up, then hang up. */
  readonly mediaMs: number;
  /** Keep the call up to this long after ICE is up while no RTCP has arrived yet. */
  readonly maxMediaMs: number;
  /** The child quits by itself after this long. */
  readonly hardTimeoutMs: number;
}

/** One side of a selected pair. */
export interface CandidateInfo {
  readonly address: string;
  readonly port: number;
  readonly type: string;
}

/** The report icewire's child prints when the call is over. */
export interface IcewireCallReport {
  /** Agent states in order. */
  readonly states: readonly string[];
  /** The selected pair of each component (index 0: component 1), from `getSelectedCandidatePair()` at hang-up. */
  readonly selected: readonly ({ readonly local: CandidateInfo; readonly remote: CandidateInfo } | null)[];
  /** RTP datagrams received per component (index 0: component 1). */
  readonly rtpReceived: readonly number[];
  /** RTCP datagrams received per component (index 0: component 1). */
  readonly rtcpReceived: readonly number[];
  /** RTP packets icewire sent (and `send()` accepted). */
  readonly rtpSent: number;
  /** The agent's component count. */
  readonly components: number;
  /** Milliseconds from the first SIP message to ICE connected, if it connected. */
  readonly connectedAfterMs: number | null;
  /** Every SIP start line sent (`>`) and received (`<`), in order. */
  readonly sip: readonly string[];
  readonly localSdp: string;
  readonly remoteSdp: string;
  /** SDP or ICE errors (e.g. an answer IceSdpSession refused). */
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
}

type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'sip'; readonly line: string }
  | { readonly type: 'state'; readonly state: string }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'done'; readonly report: IcewireCallReport };

/** icewire's child process: starts, runs one call as `options` say, prints its report and exits. */
export class IcewireSipPeer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #dir: string;
  readonly #exited: Promise<void>;
  readonly messages: ChildMessage[] = [];
  readonly #waiters: (() => void)[] = [];
  #stderr = '';

  private constructor(child: ChildProcessWithoutNullStreams, dir: string) {
    this.#child = child;
    this.#dir = dir;
    createInterface({ input: child.stdout }).on('line', (line) => {
      let m: ChildMessage;
      try {
        m = JSON.parse(line) as ChildMessage;
      } catch {
        m = { type: 'error', message: `raw: ${line}` };
      }
      this.messages.push(m);
      for (const w of this.#waiters.splice(0)) w();
    });
    child.stderr.on('data', (b: Buffer) => {
      if (this.#stderr.length < 20_000) this.#stderr += b.toString();
    });
    this.#exited = new Promise((resolve) =>
      child.once('exit', () => {
        liveChildren.delete(child);
        for (const w of this.#waiters.splice(0)) w();
        resolve();
      }),
    );
  }

  /** Starts the child in `ns` and resolves once its SIP socket is bound (a `uac` child dials right then). */
  static async start(ns: VethNamespace, options: IcewireSipOptions): Promise<IcewireSipPeer> {
    const dir = mkdtempSync(join(tmpdir(), 'icewire-sip-'));
    const self = fileURLToPath(import.meta.url);
    const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, ...tsChildNodeArgs(dir), self, '--icewire-sip', JSON.stringify(options)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    liveChildren.add(child);
    const peer = new IcewireSipPeer(child, dir);
    try {
      await peer.#waitFor((m) => m.type === 'ready', 15_000, 'icewire child ready');
    } catch (e) {
      await peer.close();
      throw e;
    }
    return peer;
  }

  /** What the child wrote to stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves with the call's report. */
  async report(timeoutMs: number): Promise<IcewireCallReport> {
    const m = await this.#waitFor((x) => x.type === 'done', timeoutMs, 'icewire call report');
    if (m.type !== 'done') throw new Error('unreachable');
    return m.report;
  }

  /** Ends the child (SIGTERM, SIGKILL if it lingers) and removes its files. Idempotent. */
  async close(): Promise<void> {
    await stopChild(this.#child, this.#exited, 3_000);
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #waitFor(pred: (m: ChildMessage) => boolean, timeoutMs: number, what: string): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`timeout (${timeoutMs} ms): ${what}; messages: ${JSON.stringify(this.messages).slice(-3000)}; stderr: ${this.#stderr.slice(-2000)}`)),
        timeoutMs,
      );
      const check = (): void => {
        const found = this.messages.find(pred);
        if (found) {
          clearTimeout(t);
          resolve(found);
        } else if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
          clearTimeout(t);
          reject(new Error(`icewire child exited before: ${what}; messages: ${JSON.stringify(this.messages).slice(-3000)}; stderr: ${this.#stderr.slice(-2000)}`));
        } else this.#waiters.push(check);
      };
      check();
    });
  }
}

// ---- the child: a minimal SIP UA around IceSdpSession ----------------------------------------------------------

/** A parsed SIP message (RFC 3261 §7): start line, headers in order (names lower-cased, compact forms expanded). */
export interface SipMessage {
  readonly startLine: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

const COMPACT: Readonly<Record<string, string>> = {
  v: 'via',
  f: 'from',
  t: 'to',
  i: 'call-id',
  m: 'contact',
  l: 'content-length',
  c: 'content-type',
};

/** Parses one SIP datagram; undefined when it is not one. */
export function parseSip(text: string): SipMessage | undefined {
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) return undefined;
  const [startLine, ...rest] = text.slice(0, split).split('\r\n');
  if (startLine === undefined || !/^(SIP\/2\.0 \d{3}|[A-Z]+ \S+ SIP\/2\.0)/.test(startLine)) return undefined;
  const headers: [string, string][] = [];
  for (const line of rest) {
    // Header folding (a continuation line) is not used by baresip; joined anyway.
    if (/^[ \t]/.test(line) && headers.length > 0) {
      headers[headers.length - 1]![1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.push([COMPACT[name] ?? name, line.slice(colon + 1).trim()]);
  }
  const length = Number(headers.find(([n]) => n === 'content-length')?.[1] ?? NaN);
  const body = text.slice(split + 4);
  return { startLine, headers, body: Number.isInteger(length) ? Buffer.from(body).subarray(0, length).toString() : body };
}

function header(m: SipMessage, name: string): string | undefined {
  return m.headers.find(([n]) => n === name)?.[1];
}

function serialize(startLine: string, headers: readonly (readonly [string, string])[], body = ''): Buffer {
  const lines = [startLine, ...headers.map(([n, v]) => `${n}: ${v}`)];
  if (body !== '') lines.push('Content-Type: application/sdp');
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** The application's audio section (PCMU); IceSdpSession adds every ICE line and the candidates' addresses. */
function audioSdp(rtcpMux: boolean): string {
  return [
    'v=0',
    `o=icewire 1 1 IN IP4 ${ICEWIRE_ADDRESS}`,
    's=icewire',
    `c=IN IP4 ${ICEWIRE_ADDRESS}`,
    't=0 0',
    'm=audio 9 RTP/AVP 0',
    'a=rtpmap:0 PCMU/8000',
    'a=ptime:20',
    'a=sendrecv',
    ...(rtcpMux ? ['a=rtcp-mux'] : []),
    '',
  ].join('\r\n');
}

/** One PCMU frame of silence (20 ms at 8 kHz). */
function rtpPacket(seq: number, timestamp: number, ssrc: number, marker: boolean): Buffer {
  const b = Buffer.alloc(12 + 160, 0xff);
  b[0] = 0x80;
  b[1] = (marker ? 0x80 : 0) | 0; // payload type 0: PCMU
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(timestamp >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  return b;
}

/** RFC 5761 §4: with version 2, a second byte of 192-223 is an RTCP packet type; anything else is RTP. */
function classify(d: Uint8Array): 'rtp' | 'rtcp' | 'other' {
  if (d.length < 8 || (d[0]! & 0xc0) !== 0x80) return 'other';
  return d[1]! >= 192 && d[1]! <= 223 ? 'rtcp' : 'rtp';
}

async function sipMain(options: IcewireSipOptions): Promise<void> {
  const { IceSdpSession } = await import('../../src/node/sdp-session.js');
  type Session = InstanceType<typeof IceSdpSession>;
  const out = (m: ChildMessage): void => {
    process.stdout.write(`${JSON.stringify(m)}\n`);
  };
  const sip: string[] = [];
  const states: string[] = [];
  const errors: string[] = [];
  const warnings: string[] = [];
  const rtpReceived = [0, 0];
  const rtcpReceived = [0, 0];
  let rtpSent = 0;
  let localSdp = '';
  let remoteSdp = '';
  let t0: number | undefined;
  let connectedAt: number | undefined;
  let mediaStarted = false;
  let finished = false;
  const fail = (message: string): void => {
    errors.push(message);
    out({ type: 'error', message });
  };

  const session: Session = new IceSdpSession({ addressFilter: (a: string) => a === ICEWIRE_ADDRESS });
  session.on('statechange', (state) => {
    states.push(state);
    if ((state === 'connected' || state === 'completed') && connectedAt === undefined) connectedAt = Date.now();
    out({ type: 'state', state });
  });
  session.on('warning', (message) => warnings.push(message));
  let hooked = false;
  const hookAgent = (): void => {
    const agent = session.agent();
    if (!agent || hooked) return;
    hooked = true;
    agent.on('data', (data, component) => {
      const kind = classify(data);
      if (kind === 'rtp') rtpReceived[component - 1] = (rtpReceived[component - 1] ?? 0) + 1;
      else if (kind === 'rtcp') rtcpReceived[component - 1] = (rtcpReceived[component - 1] ?? 0) + 1;
    });
  };

  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(ICEWIRE_SIP_PORT, ICEWIRE_ADDRESS, () => resolve());
  });
  const self = `sip:icewire@${ICEWIRE_ADDRESS}:${ICEWIRE_SIP_PORT}`;
  const send = (buf: Buffer, port: number, address: string): void => {
    sip.push(`> ${buf.toString().split('\r\n', 1)[0]}`);
    out({ type: 'sip', line: sip.at(-1)! });
    socket.send(buf, port, address);
  };
  const tag = randomBytes(6).toString('hex');
  const branch = (): string => `z9hG4bK${randomBytes(8).toString('hex')}`;

  // The dialog, once there is one: what a BYE needs (RFC 3261 §12).
  let dialog:
    | { callId: string; localUri: string; remoteUri: string; remoteTarget: string; remote: { address: string; port: number }; cseq: number }
    | undefined;
  let byeAnswered: (() => void) | undefined;

  const report = (): IcewireCallReport => {
    const agent = session.agent();
    const components = Math.max(0, ...(agent?.getLocalCandidates() ?? []).map((c) => c.component));
    const info = (c: { address: string; port: number; type: string }): CandidateInfo => ({ address: c.address, port: c.port, type: c.type });
    const selected = [1, 2].slice(0, Math.max(1, components)).map((c) => {
      const p = agent?.getSelectedCandidatePair(c);
      return p ? { local: info(p.local), remote: info(p.remote) } : null;
    });
    return {
      states,
      selected,
      rtpReceived,
      rtcpReceived,
      rtpSent,
      components,
      connectedAfterMs: connectedAt !== undefined && t0 !== undefined ? connectedAt - t0 : null,
      sip,
      localSdp,
      remoteSdp,
      errors,
      warnings,
    };
  };

  const quit = async (): Promise<void> => {
    if (finished) return;
    finished = true;
    out({ type: 'done', report: report() });
    await session.close().catch(() => undefined);
    socket.close();
    process.exit(0);
  };
  setTimeout(() => void quit(), options.hardTimeoutMs).unref();
  process.on('SIGTERM', () => void quit());

  const hangUp = async (): Promise<void> => {
    if (!dialog) return quit();
    const d = dialog;
    d.cseq += 1;
    const answered = new Promise<void>((resolve) => {
      byeAnswered = resolve;
    });
    send(
      serialize(`BYE ${d.remoteTarget} SIP/2.0`, [
        ['Via', `SIP/2.0/UDP ${ICEWIRE_ADDRESS}:${ICEWIRE_SIP_PORT};branch=${branch()};rport`],
        ['Max-Forwards', '70'],
        ['From', d.localUri],
        ['To', d.remoteUri],
        ['Call-ID', d.callId],
        ['CSeq', `${d.cseq} BYE`],
      ]),
      d.remote.port,
      d.remote.address,
    );
    await withTimeout(answered, 2_000, '200 to BYE').catch((e: unknown) => fail(String(e)));
    return quit();
  };

  // Media once the call is up: wait for ICE, then RTP every 20 ms; hang up after mediaMs once RTCP has arrived
  // on the RTCP component (1 with mux, else 2), or after maxMediaMs regardless.
  const startMedia = (): void => {
    if (mediaStarted) return;
    mediaStarted = true;
    const agent = session.agent();
    if (!agent) {
      fail('no agent after the offer/answer');
      void hangUp();
      return;
    }
    const ssrc = randomBytes(4).readUInt32BE(0);
    const seq0 = randomBytes(2).readUInt16BE(0);
    const ts0 = randomBytes(4).readUInt32BE(0);
    let n = 0;
    let upAt: number | undefined;
    const waitUpUntil = Date.now() + 5_000;
    const timer = setInterval(() => {
      const state = agent.state;
      if (upAt === undefined) {
        if (state === 'connected' || state === 'completed') upAt = Date.now();
        else if (state === 'failed' || Date.now() > waitUpUntil) {
          clearInterval(timer);
          fail(`ICE not connected (state ${state})`);
          void hangUp();
          return;
        } else return;
      }
      if (agent.send(rtpPacket(seq0 + n, ts0 + 160 * n, ssrc, n === 0), 1)) rtpSent++;
      n++;
      const elapsed = Date.now() - upAt;
      const rtcpComponent = agent.getSelectedCandidatePair(2) ? 2 : 1;
      const rtcpSeen = (rtcpReceived[rtcpComponent - 1] ?? 0) > 0;
      if ((elapsed >= options.mediaMs && rtcpSeen) || elapsed >= options.maxMediaMs) {
        clearInterval(timer);
        void hangUp();
      }
    }, 20);
  };

  const respond = (req: SipMessage, rinfo: RemoteInfo, status: string, body = '', extra: [string, string][] = []): void => {
    const headers: [string, string][] = [];
    for (const [n, v] of req.headers) {
      if (n === 'via' || n === 'from' || n === 'call-id' || n === 'cseq') headers.push([n === 'call-id' ? 'Call-ID' : n === 'cseq' ? 'CSeq' : n[0]!.toUpperCase() + n.slice(1), v]);
      if (n === 'to') headers.push(['To', /;tag=/.test(v) ? v : `${v};tag=${tag}`]);
    }
    headers.push(...extra);
    // RFC 3261 §18.2.2 with rport (RFC 3581): the response goes back to the request's source address and port.
    send(serialize(`SIP/2.0 ${status}`, headers, body), rinfo.port, rinfo.address);
  };

  const onRequest = async (req: SipMessage, rinfo: RemoteInfo): Promise<void> => {
    const [method, target] = req.startLine.split(' ');
    const contact = ['Contact', `<${self}>`] as [string, string];
    if (method === 'INVITE') {
      const initial = !/;tag=/.test(header(req, 'to') ?? '');
      respond(req, rinfo, '100 Trying');
      try {
        remoteSdp = req.body;
        await session.setRemoteDescription(req.body, 'offer');
        const offeredMux = /^a=rtcp-mux\s*$/m.test(req.body);
        localSdp = await session.createAnswer(audioSdp(offeredMux && options.rtcpMux));
        hookAgent();
      } catch (e) {
        fail(`answering ${initial ? 'INVITE' : 're-INVITE'}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        respond(req, rinfo, '488 Not Acceptable Here');
        return;
      }
      if (initial) {
        const remoteTarget = /<([^>]+)>/.exec(header(req, 'contact') ?? '')?.[1] ?? target ?? '';
        dialog = {
          callId: header(req, 'call-id') ?? '',
          localUri: `${header(req, 'to') ?? ''};tag=${tag}`,
          remoteUri: header(req, 'from') ?? '',
          remoteTarget,
          remote: { address: rinfo.address, port: rinfo.port },
          cseq: 0,
        };
        respond(req, rinfo, '180 Ringing', '', [contact]);
      }
      respond(req, rinfo, '200 OK', localSdp, [contact]);
    } else if (method === 'ACK') {
      startMedia();
    } else if (method === 'BYE') {
      respond(req, rinfo, '200 OK');
      void quit();
    } else {
      respond(req, rinfo, '501 Not Implemented');
    }
  };

  const inviteCSeq = 1;
  let acked = false;
  const onResponse = async (res: SipMessage, rinfo: RemoteInfo): Promise<void> => {
    const code = Number(res.startLine.split(' ')[1]);
    const cseqMethod = (header(res, 'cseq') ?? '').split(/\s+/)[1];
    if (cseqMethod === 'BYE') {
      byeAnswered?.();
      return;
    }
    if (cseqMethod !== 'INVITE' || code < 200) return;
    const to = header(res, 'to') ?? '';
    const remoteTarget = /<([^>]+)>/.exec(header(res, 'contact') ?? '')?.[1] ?? `sip:baresip@${BARESIP_ADDRESS}:${BARESIP_SIP_PORT}`;
    // RFC 3261 §17.1.1.3, §13.2.2.4: every 2xx (a retransmission too) is acknowledged.
    send(
      serialize(`ACK ${code < 300 ? remoteTarget : `sip:baresip@${BARESIP_ADDRESS}:${BARESIP_SIP_PORT}`} SIP/2.0`, [
        ['Via', `SIP/2.0/UDP ${ICEWIRE_ADDRESS}:${ICEWIRE_SIP_PORT};branch=${branch()};rport`],
        ['Max-Forwards', '70'],
        ['From', `<${self}>;tag=${tag}`],
        ['To', to],
        ['Call-ID', header(res, 'call-id') ?? ''],
        ['CSeq', `${inviteCSeq} ACK`],
      ]),
      rinfo.port,
      rinfo.address,
    );
    if (acked) return;
    acked = true;
    if (code >= 300) {
      fail(`INVITE answered ${res.startLine}`);
      void quit();
      return;
    }
    dialog = {
      callId: header(res, 'call-id') ?? '',
      localUri: `<${self}>;tag=${tag}`,
      remoteUri: to,
      remoteTarget,
      remote: { address: rinfo.address, port: rinfo.port },
      cseq: inviteCSeq,
    };
    try {
      remoteSdp = res.body;
      await session.setRemoteDescription(res.body, 'answer');
    } catch (e) {
      fail(`applying the answer: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      void hangUp();
      return;
    }
    startMedia();
  };

  socket.on('message', (buf, rinfo) => {
    t0 ??= Date.now();
    const m = parseSip(buf.toString());
    if (!m) return;
    sip.push(`< ${m.startLine}`);
    out({ type: 'sip', line: sip.at(-1)! });
    const handled = m.startLine.startsWith('SIP/2.0') ? onResponse(m, rinfo) : onRequest(m, rinfo);
    handled.catch((e: unknown) => fail(`SIP handling: ${String(e)}`));
  });

  out({ type: 'ready' });
  if (options.role === 'uac') {
    try {
      localSdp = await session.createOffer(audioSdp(options.rtcpMux));
      hookAgent();
    } catch (e) {
      fail(`creating the offer: ${String(e)}`);
      return quit();
    }
    const callId = randomBytes(8).toString('hex');
    t0 = Date.now();
    send(
      serialize(`INVITE sip:baresip@${BARESIP_ADDRESS}:${BARESIP_SIP_PORT} SIP/2.0`, [
        ['Via', `SIP/2.0/UDP ${ICEWIRE_ADDRESS}:${ICEWIRE_SIP_PORT};branch=${branch()};rport`],
        ['Max-Forwards', '70'],
        ['From', `<${self}>;tag=${tag}`],
        ['To', `<sip:baresip@${BARESIP_ADDRESS}>`],
        ['Call-ID', callId],
        ['CSeq', `${inviteCSeq} INVITE`],
        ['Contact', `<${self}>`],
        ['Supported', 'ice'],
      ], localSdp),
      BARESIP_SIP_PORT,
      BARESIP_ADDRESS,
    );
  }
}

const flag = process.argv.indexOf('--icewire-sip');
if (flag >= 0 && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void sipMain(JSON.parse(process.argv[flag + 1] ?? '{}') as IcewireSipOptions);
}
