/**
 * Components that run without ICE, as a sans-IO machine: the peer's SDP had no ICE attributes, or RFC 8839 §4.2.5
 * ice-mismatch says it did not understand ours. Data then goes to the signalled `c=`/`m=` address and nothing is
 * checked, so three rules stand in for ICE:
 *
 * - latching (symmetric RTP / COMEDIA): the first datagram that comes back sets the destination to
 *   its source, which is what lets a media relay or a peer behind a NAT answer;
 * - keepalives: a STUN Binding indication after 15 s without data keeps the NAT binding open (RFC 6263 §4.6; the
 *   same period as RFC 8445 §11);
 * - state: with no checks to wait for, the agent is `connected` once every component of every stream runs so.
 *
 * Same drain contract as every machine (`src/machine.ts`). The owner routes transmits (a relayed `local` still needs
 * wrapping) and offers it only datagrams nobody else took.
 * @module
 */
import type { AgentEvent, AgentState } from './checklist/types.js';
import { encodeKeepalive } from './checklist/checks.js';
import { canonicalIp } from './ip.js';
import type { SansIoMachine } from './machine.js';
import { looksLikeStun } from './stun/message.js';
import type { Datagram, RandomSource, TransportAddress } from './types.js';

/** RFC 6263 §4.6 style keepalive period for components running without ICE (RFC 8445 §11 uses 15 s too). */
export const NO_ICE_KEEPALIVE_MS = 15_000;

/** What {@link NoIcePaths} reports (the `data` and `state` shapes are the agent's own). */
export type NoIceEvent =
  /** A component latched on to the source of what came back. */
  | { readonly type: 'latched'; readonly stream: number; readonly component: number; readonly remote: TransportAddress }
  | Extract<AgentEvent, { type: 'data' }>
  /** Every component of every stream runs without ICE (reported once). */
  | { readonly type: 'state'; readonly state: Extract<AgentState, 'connected'> };

/** Options of {@link NoIcePaths}. */
export interface NoIcePathsOptions {
  /** Draws the transaction ids of keepalives. */
  readonly random: RandomSource;
  /** Components per data stream, as the agent has them: `connected` is reported once all of them run without ICE. */
  readonly streams: readonly number[];
}

interface Path {
  readonly stream: number;
  readonly component: number;
  readonly local: TransportAddress;
  remote: TransportAddress;
  latched: boolean;
  keepaliveAt: number;
}

const key = (a: TransportAddress) => `${canonicalIp(a.address)}|${a.port}`;

/** The components of one agent that run without ICE. */
export class NoIcePaths implements SansIoMachine<NoIceEvent> {
  readonly #options: NoIcePathsOptions;
  /** By `stream:component`, and by local base (where datagrams for them arrive). */
  readonly #paths = new Map<string, Path>();
  readonly #byLocal = new Map<string, Path>();
  readonly #transmits: Datagram[] = [];
  readonly #events: NoIceEvent[] = [];
  #connected = false;
  #closed = false;
  /** Components per stream; the last one of a stream may be dropped (`dropComponent`). */
  readonly #streams: number[];

  constructor(options: NoIcePathsOptions) {
    this.#options = options;
    this.#streams = [...options.streams];
  }

  /** Components running without ICE (0: the agent is all ICE, and the owner can skip this machine). */
  get size(): number {
    return this.#paths.size;
  }

  /**
   * Runs a component without ICE: data goes from `local` (a base of the component) to `remote`, the signalled
   * `c=`/`m=` address, until something comes back from elsewhere. Calling it again re-targets the component.
   */
  add(now: number, stream: number, component: number, local: TransportAddress, remote: TransportAddress): void {
    const path: Path = { stream, component, local, remote, latched: false, keepaliveAt: now + NO_ICE_KEEPALIVE_MS };
    this.#paths.set(`${stream}:${component}`, path);
    this.#byLocal.set(key(local), path);
    if (!this.#connected && this.#everyComponent()) {
      this.#connected = true;
      this.#events.push({ type: 'state', state: 'connected' });
    }
  }

  /** The destination of a component (after latching, the address that answered), or undefined when it uses ICE. */
  destination(stream: number, component: number): TransportAddress | undefined {
    return this.#paths.get(`${stream}:${component}`)?.remote;
  }

  /** Queues application data on a component's path. Returns false when the component uses ICE (or after close). */
  send(now: number, stream: number, component: number, data: Uint8Array): boolean {
    const path = this.#paths.get(`${stream}:${component}`);
    if (path === undefined || this.#closed) return false;
    this.#transmits.push({ local: path.local, remote: path.remote, data });
    // Data keeps the binding open as well as a keepalive would.
    path.keepaliveAt = now + NO_ICE_KEEPALIVE_MS;
    return true;
  }

  /** Takes application data arriving on a path's base; STUN is left to the owner (checks, gathering, TURN). */
  handleReceive(_now: number, d: Datagram): boolean {
    const path = this.#byLocal.get(key(d.local));
    if (path === undefined || looksLikeStun(d.data)) return false;
    if (!path.latched) {
      path.latched = true;
      if (key(d.remote) !== key(path.remote)) {
        path.remote = d.remote;
        this.#events.push({ type: 'latched', stream: path.stream, component: path.component, remote: d.remote });
      }
    }
    this.#events.push({ type: 'data', stream: path.stream, component: path.component, data: d.data, from: d.remote, local: d.local });
    return true;
  }

  handleTimeout(now: number): void {
    if (this.#closed) return;
    for (const path of this.#paths.values()) {
      if (now < path.keepaliveAt) continue;
      this.#transmits.push({ local: path.local, remote: path.remote, data: encodeKeepalive(this.#options.random.bytes(12)) });
      path.keepaliveAt = now + NO_ICE_KEEPALIVE_MS;
    }
  }

  pollTransmit(): Datagram | undefined {
    return this.#transmits.shift();
  }

  pollEvent(): NoIceEvent | undefined {
    return this.#events.shift();
  }

  pollTimeout(): number | undefined {
    if (this.#closed) return undefined;
    let min: number | undefined;
    for (const path of this.#paths.values()) if (min === undefined || path.keepaliveAt < min) min = path.keepaliveAt;
    return min;
  }

  /**
   * The agent dropped the last component of `stream` (RTCP multiplexed on RTP after all): its path, if any, goes, and
   * `connected` no longer waits for it.
   */
  dropComponent(stream: number, component: number): void {
    const path = this.#paths.get(`${stream}:${component}`);
    if (path !== undefined) {
      this.#paths.delete(`${stream}:${component}`);
      if (this.#byLocal.get(key(path.local)) === path) this.#byLocal.delete(key(path.local));
    }
    if (this.#streams[stream] === component) this.#streams[stream] = component - 1;
    if (!this.#connected && this.#paths.size > 0 && this.#everyComponent()) {
      this.#connected = true;
      this.#events.push({ type: 'state', state: 'connected' });
    }
  }

  /** Stops sending (data and keepalives); received data is still reported, as before close. */
  close(): void {
    this.#closed = true;
  }

  #everyComponent(): boolean {
    const streams = this.#streams;
    for (let s = 0; s < streams.length; s++) {
      for (let c = 1; c <= streams[s]!; c++) if (!this.#paths.has(`${s}:${c}`)) return false;
    }
    return true;
  }
}
