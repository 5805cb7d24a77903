/**
 * A sans-IO NAT behaviour discovery client (RFC 5780 §4), reporting in the terms of RFC 4787: mapping (§4.1) and
 * filtering (§5) are endpoint-independent, address-dependent or address-and-port-dependent; hairpinning (§6) works
 * or not.
 *
 * The tests, in this order, all from the one `local` base (§4.1: behaviour may differ per port):
 *
 * 1. connectivity (§4.2): a Binding request to the server; the answer gives the mapped address and OTHER-ADDRESS.
 * 2. filtering (§4.4 tests II and III): CHANGE-REQUEST "change IP and port" and "change port", sent together. Both
 *    go to the primary address, so neither opens the NAT's filter to the alternate address; filtering runs BEFORE
 *    mapping because mapping test II does open it (§4.4: "sensitive to prior state").
 * 3. mapping (§4.3 tests II and III): to the alternate address with the primary port, then to the alternate address
 *    and port, comparing mapped addresses. Skipped when test 1's mapped address is `local` itself (no NAT).
 * 4. hairpinning (§3.4), with a second base `hairpinLocal`: it learns its own mapped address, then each base sends a
 *    Binding request to the other's mapped address, `local` first. Under endpoint-independent mapping the first
 *    request opens `local`'s filter to the second base's mapping, so the second arrives whatever the filtering; a
 *    request that arrives means the NAT hairpins. With neither endpoint-independent mapping nor filtering a silent
 *    NAT may still hairpin behind its filter: the answer is then `undefined`.
 *
 * New transactions start at least `spacingMs` apart (§5: at most ten per second). Binding lifetime (§4.6) needs
 * RESPONSE-PORT, which this client does not use.
 * @module
 */
import { InvalidStateError } from '../errors.js';
import { canonicalIp, ipFamily } from '../ip.js';
import type { SansIoMachine } from '../machine.js';
import type { Datagram, RandomSource, TransportAddress } from '../types.js';
import { attr, Attr, getAttribute } from './attributes.js';
import { StunMethod } from './constants.js';
import { encodeStunMessage, looksLikeStun, tryDecodeStunMessage, type StunAttribute } from './message.js';
import { NatAttr } from './nat-attributes.js';
import { newTransactionId, TransactionTable, type TransactionTiming } from './transaction.js';

/** An RFC 4787 mapping (§4.1) or filtering (§5) behaviour. */
export type NatBehaviorClass = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/** The steps of a discovery run, in order. */
export type NatDiscoveryStep = 'connectivity' | 'filtering' | 'mapping' | 'hairpinning';

/** What a discovery run found. A field is undefined when its test could not run or could not conclude. */
export interface NatDiscoveryResult {
  /** The server answered the first Binding request (RFC 5780 §4.2). */
  readonly udp: boolean;
  /** The server's answer: `local` as the server saw it. */
  readonly mappedAddress: TransportAddress | undefined;
  /** Whether the mapped address differs from `local` (a NAT on the path). */
  readonly natted: boolean | undefined;
  /** RESPONSE-ORIGIN of the first answer. */
  readonly responseOrigin: TransportAddress | undefined;
  /** OTHER-ADDRESS of the first answer; undefined when the server does not do RFC 5780. */
  readonly otherAddress: TransportAddress | undefined;
  readonly mapping: NatBehaviorClass | undefined;
  readonly filtering: NatBehaviorClass | undefined;
  /** Undefined without `hairpinLocal`, or when the test could not conclude (see the module comment). */
  readonly hairpinning: boolean | undefined;
  /** Why a field is undefined, in plain words, in the order found. */
  readonly problems: readonly string[];
}

/** Events of {@link NatDiscovery}. */
export type NatDiscoveryEvent =
  | { readonly type: 'step'; readonly step: NatDiscoveryStep }
  | { readonly type: 'complete'; readonly result: NatDiscoveryResult };

/** Options of {@link NatDiscovery}. */
export interface NatDiscoveryOptions {
  readonly random: RandomSource;
  /** The base tested: the address and port the owner's socket is bound to (a specific address, not a wildcard). */
  readonly local: TransportAddress;
  /** The server's primary address and port. */
  readonly server: TransportAddress;
  /** A second base on the same host, for the hairpinning test; none, no test. */
  readonly hairpinLocal?: TransportAddress;
  /**
   * Retransmissions. Default `{ rtoMs: 500, rc: 3, rm: 4 }`: a test that expects no answer (filtering, hairpinning)
   * gives up after 3.5 s, not RFC 8489's 39.5 s.
   */
  readonly timing?: TransactionTiming;
  /** Least time between the starts of two transactions, ms. Default 100 (RFC 5780 §5). */
  readonly spacingMs?: number;
}

/** Default retransmission settings of a discovery transaction. */
export const NAT_DISCOVERY_TIMING: Required<Pick<TransactionTiming, 'rtoMs' | 'rc' | 'rm'>> = { rtoMs: 500, rc: 3, rm: 4 };

type ProbeKind = 'connectivity' | 'filter-ip-port' | 'filter-port' | 'map-ip' | 'map-ip-port' | 'hairpin-server' | 'hairpin-a' | 'hairpin-b';

interface Probe {
  readonly kind: ProbeKind;
  /** The base the request leaves from. */
  readonly from: TransportAddress;
  readonly to: TransportAddress;
  readonly change?: { readonly changeIp: boolean; readonly changePort: boolean };
  /** Where the answer must come from (CHANGE-REQUEST), or, for hairpin probes, the base that must receive it. */
  readonly expect?: TransportAddress;
}

type Outcome = { readonly ok: true; readonly mapped: TransportAddress | undefined; readonly other: TransportAddress | undefined; readonly origin: TransportAddress | undefined } | { readonly ok: false; readonly why: string };

const key = (a: TransportAddress) => `${canonicalIp(a.address)}|${a.port}`;
const same = (a: TransportAddress | undefined, b: TransportAddress | undefined) => a !== undefined && b !== undefined && key(a) === key(b);
const show = (a: TransportAddress) => (ipFamily(a.address) === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);

function checkAddress(name: string, a: TransportAddress): void {
  if (ipFamily(a.address) === 0) throw new RangeError(`${name} must be an IP literal, got ${a.address}`);
  if (!Number.isInteger(a.port) || a.port < 1 || a.port > 0xffff) throw new RangeError(`${name} port ${a.port} is not in 1-65535`);
}

/**
 * The discovery client. Call `start(now)`, then feed it every datagram arriving on its bases and its timeouts; it
 * emits a `step` event as each test starts and one `complete` event with the result. Bad network input is dropped.
 */
export class NatDiscovery implements SansIoMachine<NatDiscoveryEvent> {
  readonly #random: RandomSource;
  readonly #local: TransportAddress;
  readonly #server: TransportAddress;
  readonly #hairpinLocal: TransportAddress | undefined;
  readonly #timing: TransactionTiming;
  readonly #spacing: number;
  readonly #table = new TransactionTable<Probe>();
  readonly #events: NatDiscoveryEvent[] = [];
  readonly #waiting: Probe[] = [];
  readonly #problems: string[] = [];
  #nextStart = -Infinity;
  #step: NatDiscoveryStep | 'idle' | 'done' = 'idle';
  #result: NatDiscoveryResult | undefined;
  // What the tests found so far.
  #udp = false;
  #mapped: TransportAddress | undefined;
  #origin: TransportAddress | undefined;
  #other: TransportAddress | undefined;
  #mapping: NatBehaviorClass | undefined;
  #filtering: NatBehaviorClass | undefined;
  #hairpinning: boolean | undefined;
  #mappedIp: TransportAddress | undefined;
  #filter: { ipPort: boolean | 'error' | undefined; port: boolean | 'error' | undefined } = { ipPort: undefined, port: undefined };

  /** @throws RangeError when an address is not an IP literal with a port in 1-65535, or the two bases are equal. */
  constructor(options: NatDiscoveryOptions) {
    checkAddress('local', options.local);
    checkAddress('server', options.server);
    if (options.hairpinLocal !== undefined) {
      checkAddress('hairpinLocal', options.hairpinLocal);
      if (same(options.hairpinLocal, options.local)) throw new RangeError('hairpinLocal must differ from local');
    }
    if (options.spacingMs !== undefined && !(options.spacingMs >= 0)) throw new RangeError('spacingMs must be >= 0');
    this.#random = options.random;
    this.#local = options.local;
    this.#server = options.server;
    this.#hairpinLocal = options.hairpinLocal;
    this.#timing = options.timing ?? NAT_DISCOVERY_TIMING;
    this.#spacing = options.spacingMs ?? 100;
  }

  /** The result once complete, else undefined. */
  get result(): NatDiscoveryResult | undefined {
    return this.#result;
  }

  /** The step running now (`'idle'` before `start`, `'done'` after completion). */
  get step(): NatDiscoveryStep | 'idle' | 'done' {
    return this.#step;
  }

  /** Starts the run. @throws InvalidStateError when already started. */
  start(now: number): void {
    if (this.#step !== 'idle') throw new InvalidStateError('NatDiscovery already started');
    this.#enter('connectivity');
    this.#schedule(now, { kind: 'connectivity', from: this.#local, to: this.#server });
  }

  /** Takes STUN datagrams arriving on one of the bases; declines everything else. */
  handleReceive(now: number, d: Datagram): boolean {
    const onLocal = same(d.local, this.#local);
    if (!(onLocal || same(d.local, this.#hairpinLocal)) || !looksLikeStun(d.data)) return false;
    const r = tryDecodeStunMessage(d.data);
    if (!r.ok || r.message.method !== StunMethod.Binding) return true;
    const m = r.message;
    const probe = this.#table.peek(m.transactionId);
    if (probe === undefined) return true; // late, duplicate or foreign: nothing waits for it
    if (m.cls === 'request') {
      // A hairpin probe that came back to the other base (RFC 5780 §3.4: "the client receives its own request").
      if ((probe.kind === 'hairpin-a' || probe.kind === 'hairpin-b') && same(d.local, probe.expect)) {
        this.#table.take(m.transactionId);
        this.#hairpinDone(now, true);
      }
      return true;
    }
    if ((m.cls !== 'success' && m.cls !== 'error') || !same(d.local, probe.from)) return true;
    this.#table.take(m.transactionId);
    let outcome: Outcome;
    if (m.cls === 'error') {
      const e = getAttribute(m, Attr.ERROR_CODE);
      outcome = { ok: false, why: `error ${e ? `${e.code} ${e.reason}` : 'without ERROR-CODE'}` };
    } else if (probe.expect !== undefined && !same(d.remote, probe.expect)) {
      outcome = { ok: false, why: `answer came from ${show(d.remote)}, not ${show(probe.expect)}: the server ignored CHANGE-REQUEST` };
    } else {
      outcome = {
        ok: true,
        mapped: getAttribute(m, Attr.XOR_MAPPED_ADDRESS) ?? getAttribute(m, Attr.MAPPED_ADDRESS),
        other: getAttribute(m, NatAttr.OTHER_ADDRESS),
        origin: getAttribute(m, NatAttr.RESPONSE_ORIGIN),
      };
    }
    this.#answered(now, probe, outcome);
    this.#pump(now);
    return true;
  }

  handleTimeout(now: number): void {
    this.#table.handleTimeout(now);
    for (let e = this.#table.pollEvent(); e !== undefined; e = this.#table.pollEvent()) this.#answered(now, e.context, undefined);
    this.#pump(now);
  }

  pollTransmit(): Datagram | undefined {
    return this.#table.pollTransmit();
  }

  pollEvent(): NatDiscoveryEvent | undefined {
    return this.#events.shift();
  }

  pollTimeout(): number | undefined {
    const t = this.#table.pollTimeout();
    if (this.#waiting.length === 0) return t;
    return t === undefined ? this.#nextStart : Math.min(t, this.#nextStart);
  }

  // ---- procedure -------------------------------------------------------------------------------------------------

  #enter(step: NatDiscoveryStep): void {
    this.#step = step;
    this.#events.push({ type: 'step', step });
  }

  #schedule(now: number, probe: Probe): void {
    this.#waiting.push(probe);
    this.#pump(now);
  }

  // Starts the waiting probes whose turn has come (§5 pacing).
  #pump(now: number): void {
    while (this.#waiting.length > 0 && now >= this.#nextStart) {
      const p = this.#waiting.shift()!;
      const id = newTransactionId(this.#random);
      const attributes: StunAttribute[] = p.change ? [attr(NatAttr.CHANGE_REQUEST, p.change, id)] : [];
      const data = encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: id, attributes }, { fingerprint: true });
      this.#table.start(now, id, { local: p.from, remote: p.to, data }, p, this.#timing);
      this.#nextStart = now + this.#spacing;
    }
  }

  // A probe's transaction ended: answered (`outcome`) or timed out (undefined).
  #answered(now: number, probe: Probe, outcome: Outcome | undefined): void {
    switch (probe.kind) {
      case 'connectivity':
        return this.#connectivity(now, outcome);
      case 'filter-ip-port':
      case 'filter-port':
        return this.#filtered(now, probe.kind, outcome);
      case 'map-ip':
      case 'map-ip-port':
        return this.#mapped2(now, probe.kind, outcome);
      case 'hairpin-server':
        if (outcome?.ok && outcome.mapped) {
          this.#schedule(now, { kind: 'hairpin-a', from: this.#local, to: outcome.mapped, expect: this.#hairpinLocal! });
          this.#schedule(now, { kind: 'hairpin-b', from: this.#hairpinLocal!, to: this.#mapped!, expect: this.#local });
        } else {
          this.#problems.push(`hairpinning: the second base got no mapped address (${outcome?.ok === false ? outcome.why : 'no answer'})`);
          this.#finish();
        }
        return;
      case 'hairpin-a':
      case 'hairpin-b':
        // Timed out (an arrival takes the transaction first). Done when neither probe is left.
        if (!this.#table.some((p) => p.kind === 'hairpin-a' || p.kind === 'hairpin-b') && !this.#waiting.some((p) => p.kind === 'hairpin-b')) {
          this.#hairpinDone(now, false);
        }
        return;
    }
  }

  #connectivity(now: number, outcome: Outcome | undefined): void {
    if (outcome === undefined) {
      this.#problems.push(`no answer from ${show(this.#server)}: no UDP connectivity to the server`);
      return this.#finish();
    }
    if (!outcome.ok || outcome.mapped === undefined) {
      this.#udp = true; // it answered, uselessly
      this.#problems.push(`the server's first answer is unusable (${outcome.ok ? 'no mapped address' : outcome.why})`);
      return this.#finish();
    }
    this.#udp = true;
    this.#mapped = outcome.mapped;
    this.#origin = outcome.origin;
    this.#other = outcome.other;
    if (this.#other === undefined) {
      this.#problems.push('the server sent no OTHER-ADDRESS: it does not do RFC 5780, so mapping and filtering are unknown');
      return this.#hairpin(now);
    }
    if (canonicalIp(this.#other.address) === canonicalIp(this.#server.address) || this.#other.port === this.#server.port) {
      this.#problems.push(`OTHER-ADDRESS ${show(this.#other)} shares an address or port with the server: mapping and filtering are unknown`);
      this.#other = undefined;
      return this.#hairpin(now);
    }
    this.#enter('filtering');
    const other = this.#other;
    this.#schedule(now, { kind: 'filter-ip-port', from: this.#local, to: this.#server, change: { changeIp: true, changePort: true }, expect: other });
    this.#schedule(now, { kind: 'filter-port', from: this.#local, to: this.#server, change: { changeIp: false, changePort: true }, expect: { address: this.#server.address, port: other.port } });
  }

  // RFC 5780 §4.4: an answer from the other address and port means endpoint-independent filtering; else one from the
  // other port only means address-dependent; neither, address-and-port-dependent.
  #filtered(now: number, kind: 'filter-ip-port' | 'filter-port', outcome: Outcome | undefined): void {
    if (this.#step !== 'filtering') return;
    const v = outcome === undefined ? false : outcome.ok ? true : 'error';
    if (outcome !== undefined && !outcome.ok) this.#problems.push(`filtering: ${outcome.why}`);
    if (kind === 'filter-ip-port') this.#filter.ipPort = v;
    else this.#filter.port = v;
    const { ipPort, port } = this.#filter;
    if (ipPort === 'error' || port === 'error') {
      this.#dropProbes('filter-ip-port', 'filter-port');
      return this.#mappingTests(now);
    }
    if (ipPort === true) {
      this.#filtering = 'endpoint-independent';
      this.#dropProbes('filter-port');
      return this.#mappingTests(now);
    }
    if (ipPort === false && port !== undefined) {
      this.#filtering = port ? 'address-dependent' : 'address-and-port-dependent';
      this.#mappingTests(now);
    }
  }

  #mappingTests(now: number): void {
    this.#enter('mapping');
    if (!this.#natted()) {
      // RFC 5780 §4.3: not NATed, so the effective mapping is endpoint-independent.
      this.#mapping = 'endpoint-independent';
      return this.#hairpin(now);
    }
    this.#schedule(now, { kind: 'map-ip', from: this.#local, to: { address: this.#other!.address, port: this.#server.port } });
  }

  // RFC 5780 §4.3 tests II and III.
  #mapped2(now: number, kind: 'map-ip' | 'map-ip-port', outcome: Outcome | undefined): void {
    if (outcome === undefined || !outcome.ok || outcome.mapped === undefined) {
      this.#problems.push(`mapping: ${outcome === undefined ? 'no answer from the alternate address' : outcome.ok ? 'no mapped address' : outcome.why}`);
      return this.#hairpin(now);
    }
    if (kind === 'map-ip') {
      if (same(outcome.mapped, this.#mapped)) {
        this.#mapping = 'endpoint-independent';
        return this.#hairpin(now);
      }
      this.#mappedIp = outcome.mapped;
      this.#schedule(now, { kind: 'map-ip-port', from: this.#local, to: this.#other! });
      return;
    }
    this.#mapping = same(outcome.mapped, this.#mappedIp) ? 'address-dependent' : 'address-and-port-dependent';
    this.#hairpin(now);
  }

  #hairpin(now: number): void {
    if (this.#hairpinLocal === undefined) return this.#finish();
    this.#enter('hairpinning');
    this.#schedule(now, { kind: 'hairpin-server', from: this.#hairpinLocal, to: this.#server });
  }

  #hairpinDone(_now: number, arrived: boolean): void {
    if (this.#step !== 'hairpinning') return;
    this.#dropProbes('hairpin-a', 'hairpin-b');
    if (arrived) this.#hairpinning = true;
    else if (this.#mapping === 'endpoint-independent' || this.#filtering === 'endpoint-independent') this.#hairpinning = false;
    else this.#problems.push('hairpinning: no probe came back, but without endpoint-independent mapping or filtering the NAT may have filtered them');
    this.#finish();
  }

  #dropProbes(...kinds: ProbeKind[]): void {
    this.#table.cancelWhere((p) => kinds.includes(p.kind));
    for (let i = this.#waiting.length - 1; i >= 0; i--) if (kinds.includes(this.#waiting[i]!.kind)) this.#waiting.splice(i, 1);
  }

  #natted(): boolean | undefined {
    return this.#mapped === undefined ? undefined : !same(this.#mapped, this.#local);
  }

  #finish(): void {
    this.#table.cancelWhere(() => true);
    this.#waiting.length = 0;
    this.#step = 'done';
    this.#result = {
      udp: this.#udp,
      mappedAddress: this.#mapped,
      natted: this.#natted(),
      responseOrigin: this.#origin,
      otherAddress: this.#other,
      mapping: this.#mapping,
      filtering: this.#filtering,
      hairpinning: this.#hairpinning,
      problems: [...this.#problems],
    };
    this.#events.push({ type: 'complete', result: this.#result });
  }
}
