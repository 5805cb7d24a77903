/**
 * The structured check trace: typed events of what an agent did and why, for debugging a failed call and for the
 * `icewire timeline` picture. Off by default; when an agent has no sink, `ctx.trace` is undefined and every hook
 * in this folder is one `if (ctx.trace)` that builds nothing (no object, no closure, no string).
 *
 * Timestamps are the machine's `now` (ms from the driver's origin): the core has no clock. Events are plain JSON
 * values (addresses as `ip:port` text, pair priorities as decimal strings), so a sink can write them as JSON lines.
 * @module
 */
import type { Candidate, CandidateType, LocalCandidate } from '../candidates/candidate.js';
import { Attr, getAttribute } from '../stun/attributes.js';
import type { DecodedStunMessage } from '../stun/message.js';
import type { IceRole, TransportAddress } from '../types.js';
import type { ChecklistState } from './checklist.js';
import { errorCodeOf } from './checks.js';
import type { AgentContext } from './context.js';
import type { CandidatePair, PairState } from './pair.js';
import type { Tx } from './transactions.js';
import type { AgentState } from './types.js';

/** A candidate as the trace shows it. */
export interface TraceCandidate {
  readonly type: CandidateType;
  /** `ip:port` (`[ip]:port` for IPv6). */
  readonly address: string;
  readonly transport: 'udp' | 'tcp';
  readonly priority: number;
  readonly foundation: string;
  readonly component: number;
  /** Local candidates: the base packets leave from. */
  readonly base?: string;
  /** `raddr`/`rport`. */
  readonly related?: string;
  /** The STUN or TURN server that produced the candidate (server-reflexive and relayed ones). */
  readonly server?: string;
  /** The `.local` name signalled instead of the address. */
  readonly mdnsName?: string;
}

/** What every event has. */
interface At {
  /** The machine's `now` when it happened (ms). */
  readonly t: number;
  /** Which agent of an `IceSdpSession` (its transport index); absent for a single agent. */
  readonly agent?: number;
}

/** How a check transaction ended. */
export type CheckOutcome = 'success' | 'error' | 'role-conflict' | 'asymmetric' | 'no-mapped-address';

/** Events of the check trace (discriminated on `type`). */
export type TraceEvent =
  /** Gathering found a candidate (`AgentMachine`); `server` names the STUN/TURN server for srflx/relay ones. */
  | (At & { readonly type: 'candidate-gathered'; readonly stream: number; readonly candidate: TraceCandidate })
  /** A STUN or TURN server gave no candidate for a base. */
  | (At & { readonly type: 'server-failed'; readonly kind: 'stun' | 'turn'; readonly server: string; readonly base: string; readonly reason: string })
  /** A remote candidate reached the core: signalled, or peer-reflexive from a check (RFC 8445 §7.3.1.3). */
  | (At & { readonly type: 'remote-candidate'; readonly stream: number; readonly source: 'signalled' | 'peer-reflexive'; readonly candidate: TraceCandidate })
  /** A peer-reflexive local candidate learned from a check's mapped address (§7.2.5.3.1). */
  | (At & { readonly type: 'local-candidate'; readonly stream: number; readonly candidate: TraceCandidate })
  /** A pair entered the checklist (or, for a valid pair built from a mapped address, the valid list). */
  | (At & {
      readonly type: 'pair-formed';
      readonly stream: number;
      readonly component: number;
      readonly pair: string;
      readonly local: TraceCandidate;
      readonly remote: TraceCandidate;
      /** The pair priority (§6.1.2.3), a 64-bit value in decimal. */
      readonly priority: string;
      readonly state: PairState;
    })
  /** A pair left the checklist: pruned (§6.1.2.4-5, §19.5.1), evicted, or dropped after selection (§8.1.2). */
  | (At & { readonly type: 'pair-pruned'; readonly pair: string })
  | (At & { readonly type: 'pair-state'; readonly pair: string; readonly state: PairState })
  /** The first send of a check (§7.2.4); `paceWaitMs` is how long the process-wide pacer held it past its Ta slot. */
  | (At & {
      readonly type: 'check-sent';
      readonly pair: string;
      /** Transaction id, hex. */
      readonly tx: string;
      readonly role: IceRole;
      readonly useCandidate: boolean;
      readonly triggered: boolean;
      readonly paceWaitMs: number;
      readonly rtoMs: number;
    })
  | (At & { readonly type: 'check-retransmit'; readonly pair: string; readonly tx: string; readonly attempt: number })
  /** A check's answer: `rttMs` from its first send; the mapped address of a success, the code of an error. */
  | (At & {
      readonly type: 'check-response';
      readonly pair: string;
      readonly tx: string;
      readonly outcome: CheckOutcome;
      readonly rttMs: number;
      readonly mapped?: string;
      readonly errorCode?: number;
    })
  /** No answer after the last retransmission (§7.2.5.2.3); `cancelled` checks (§7.3.1.4, §8.1.2) fail nothing. */
  | (At & { readonly type: 'check-timeout'; readonly pair: string; readonly tx: string; readonly cancelled: boolean })
  /** The peer's check, answered (`answer`: 200, or 487 on a role conflict); `pair` when it was already in a checklist. */
  | (At & {
      readonly type: 'check-received';
      readonly pair?: string;
      readonly local: string;
      readonly from: string;
      readonly useCandidate: boolean;
      readonly answer: number;
    })
  /** A role conflict (§7.3.1.1 on a request, §7.2.5.1 on a 487 answer); `role-change` follows when the role changed. */
  | (At & { readonly type: 'role-conflict'; readonly via: 'request' | 'response'; readonly pair?: string })
  | (At & { readonly type: 'role-change'; readonly role: IceRole })
  /** A nomination starts: the controlling agent picked the pair (§8.1.1), or the peer's USE-CANDIDATE asked (§7.3.1.5). */
  | (At & { readonly type: 'nominating'; readonly pair: string; readonly by: 'local' | 'peer' })
  /** A check succeeded and `pair` is valid (§7.2.5.3.2), produced by the check of `checkPair`. */
  | (At & { readonly type: 'pair-valid'; readonly pair: string; readonly checkPair: string; readonly nominated: boolean })
  /** RFC 8445 selected the nominated pair of a component (§8.1.1). */
  | (At & { readonly type: 'selected'; readonly stream: number; readonly component: number; readonly pair: string })
  /** The pair data goes on changed (RTCIceTransport's selected pair, the `selected-pair` event). */
  | (At & { readonly type: 'sending-pair'; readonly stream: number; readonly component: number; readonly pair: string; readonly nominated: boolean })
  | (At & { readonly type: 'checklist-state'; readonly stream: number; readonly state: ChecklistState })
  | (At & { readonly type: 'state'; readonly state: AgentState })
  | (At & { readonly type: 'consent-sent'; readonly pair: string; readonly tx: string })
  | (At & { readonly type: 'consent-response'; readonly pair: string; readonly tx: string; readonly outcome: 'success' | 'error' | 'asymmetric'; readonly rttMs: number; readonly errorCode?: number })
  /** RFC 7675: consent expired (no answer for the consent timeout) or was revoked (403). */
  | (At & { readonly type: 'consent-lost'; readonly pair: string; readonly reason: 'expired' | 'revoked' });

/** Where trace events go. Called synchronously inside the machine: keep it cheap, and never throw. */
export type TraceSink = (event: TraceEvent) => void;

/** `ip:port`, brackets around IPv6. */
export function traceAddress(a: TransportAddress): string {
  return a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** The trace form of a candidate; `server` for one a STUN/TURN server produced. */
export function traceCandidate(c: Candidate | LocalCandidate, server?: TransportAddress): TraceCandidate {
  const local = 'base' in c ? c : undefined;
  const from = server ?? local?.relayServer;
  return {
    type: c.type,
    address: traceAddress(c),
    transport: c.transport,
    priority: c.priority,
    foundation: c.foundation,
    component: c.component,
    ...(local ? { base: traceAddress(local.base) } : {}),
    ...(c.relatedAddress !== undefined && c.relatedPort !== undefined ? { related: traceAddress({ address: c.relatedAddress, port: c.relatedPort }) } : {}),
    ...(from ? { server: traceAddress(from) } : {}),
    ...(local?.mdnsName !== undefined ? { mdnsName: local.mdnsName } : {}),
  };
}

function hex(id: Uint8Array): string {
  let s = '';
  for (const b of id) s += b.toString(16).padStart(2, '0');
  return s;
}

/**
 * One agent's tracer: the hooks of the checklist procedures call it only when a sink is set. It keeps the little
 * state the events need (which pairs were described, retransmission counts, the pacer's hold, checklist states)
 * on its own side, so the agent's records carry nothing for it.
 */
export class Tracer {
  readonly #sink: TraceSink;
  readonly #ctx: AgentContext;
  readonly #described = new Set<CandidatePair>();
  readonly #sends = new WeakMap<Tx, number>();
  readonly #checklistStates: ChecklistState[] = [];
  /** When the global pacer first refused the check waiting now. */
  #heldSince: number | undefined;

  constructor(sink: TraceSink, ctx: AgentContext) {
    this.#sink = sink;
    this.#ctx = ctx;
  }

  #emit(e: TraceEvent): void {
    this.#sink(e);
  }

  get #t(): number {
    return this.#ctx.now === -Infinity ? 0 : this.#ctx.now;
  }

  /** The pair's id, after describing it once (`pair-formed`) when it is new to the trace. */
  #pair(p: CandidatePair): string {
    if (!this.#described.has(p)) {
      this.#described.add(p);
      this.#emit({
        t: this.#t,
        type: 'pair-formed',
        stream: p.stream,
        component: p.component,
        pair: p.id,
        local: traceCandidate(p.local),
        remote: traceCandidate(p.remote),
        priority: p.priority.toString(),
        state: p.state,
      });
    }
    return p.id;
  }

  pairFormed(p: CandidatePair): void {
    this.#pair(p);
  }

  pairPruned(p: CandidatePair): void {
    if (this.#described.has(p)) this.#emit({ t: this.#t, type: 'pair-pruned', pair: p.id });
  }

  pairState(p: CandidatePair, state: PairState): void {
    this.#emit({ t: this.#t, type: 'pair-state', pair: this.#pair(p), state });
  }

  remoteCandidate(stream: number, c: Candidate, source: 'signalled' | 'peer-reflexive'): void {
    this.#emit({ t: this.#t, type: 'remote-candidate', stream, source, candidate: traceCandidate(c) });
  }

  localCandidate(stream: number, c: LocalCandidate): void {
    this.#emit({ t: this.#t, type: 'local-candidate', stream, candidate: traceCandidate(c) });
  }

  /** The global pacer refused a check that was due: its hold starts now (unless it already started). */
  pacerRefused(now: number): void {
    this.#heldSince ??= now;
  }

  /** No check is waiting any more: a hold that began before does not belong to the next check. */
  nothingToCheck(): void {
    this.#heldSince = undefined;
  }

  checkSent(now: number, tx: Tx, triggered: boolean, rtoMs: number): void {
    if (tx.kind !== 'check') return;
    const paceWaitMs = this.#heldSince === undefined ? 0 : now - this.#heldSince;
    this.#heldSince = undefined;
    this.#sends.set(tx, 1);
    this.#emit({
      t: now,
      type: 'check-sent',
      pair: this.#pair(tx.pair),
      tx: txId(tx),
      role: tx.role,
      useCandidate: tx.useCandidate,
      triggered,
      paceWaitMs,
      rtoMs,
    });
  }

  retransmitted(now: number, tx: Tx): void {
    const attempt = (this.#sends.get(tx) ?? 1) + 1;
    this.#sends.set(tx, attempt);
    this.#emit({ t: now, type: 'check-retransmit', pair: this.#pair(tx.pair), tx: txId(tx), attempt });
  }

  /** An authenticated answer to one of our transactions; `symmetric` per RFC 8445 §7.2.5.2.1. */
  response(now: number, tx: Tx, m: DecodedStunMessage, symmetric: boolean): void {
    const rttMs = now - tx.sentAt;
    const code = m.cls === 'error' ? errorCodeOf(m) : undefined;
    if (tx.kind === 'consent') {
      const outcome = !symmetric ? 'asymmetric' : m.cls === 'success' ? 'success' : 'error';
      this.#emit({ t: now, type: 'consent-response', pair: this.#pair(tx.pair), tx: txId(tx), outcome, rttMs, ...(code !== undefined ? { errorCode: code } : {}) });
      return;
    }
    const mapped = m.cls === 'success' ? getAttribute(m, Attr.XOR_MAPPED_ADDRESS) : undefined;
    const outcome: CheckOutcome = !symmetric
      ? 'asymmetric'
      : m.cls === 'error'
        ? code === 487
          ? 'role-conflict'
          : 'error'
        : mapped
          ? 'success'
          : 'no-mapped-address';
    this.#emit({
      t: now,
      type: 'check-response',
      pair: this.#pair(tx.pair),
      tx: txId(tx),
      outcome,
      rttMs,
      ...(mapped ? { mapped: traceAddress(mapped) } : {}),
      ...(code !== undefined ? { errorCode: code } : {}),
    });
  }

  timedOut(now: number, tx: Tx): void {
    if (tx.kind !== 'check') return;
    this.#emit({ t: now, type: 'check-timeout', pair: this.#pair(tx.pair), tx: txId(tx), cancelled: tx.cancelled });
  }

  requestAnswered(local: TransportAddress, from: TransportAddress, pair: CandidatePair | undefined, useCandidate: boolean, answer: number): void {
    this.#emit({
      t: this.#t,
      type: 'check-received',
      ...(pair ? { pair: this.#pair(pair) } : {}),
      local: traceAddress(local),
      from: traceAddress(from),
      useCandidate,
      answer,
    });
  }

  roleConflict(via: 'request' | 'response', pair: CandidatePair | undefined): void {
    this.#emit({ t: this.#t, type: 'role-conflict', via, ...(pair ? { pair: this.#pair(pair) } : {}) });
  }

  roleChange(role: IceRole): void {
    this.#emit({ t: this.#t, type: 'role-change', role });
  }

  nominating(p: CandidatePair, by: 'local' | 'peer'): void {
    this.#emit({ t: this.#t, type: 'nominating', pair: this.#pair(p), by });
  }

  pairValid(checkPair: CandidatePair, valid: CandidatePair): void {
    this.#emit({ t: this.#t, type: 'pair-valid', pair: this.#pair(valid), checkPair: this.#pair(checkPair), nominated: valid.nominated });
  }

  selected(p: CandidatePair): void {
    this.#emit({ t: this.#t, type: 'selected', stream: p.stream, component: p.component, pair: this.#pair(p) });
  }

  sending(p: CandidatePair): void {
    this.#emit({ t: this.#t, type: 'sending-pair', stream: p.stream, component: p.component, pair: this.#pair(p), nominated: p.nominated });
  }

  /** After an input: each checklist whose state changed since the last look. */
  checklists(): void {
    for (const s of this.#ctx.streams) {
      const state = s.checklist.state;
      if (this.#checklistStates[s.index] === state) continue;
      this.#checklistStates[s.index] = state;
      this.#emit({ t: this.#t, type: 'checklist-state', stream: s.index, state });
    }
  }

  agentState(state: AgentState): void {
    this.#emit({ t: this.#t, type: 'state', state });
  }

  consentSent(now: number, tx: Tx): void {
    this.#emit({ t: now, type: 'consent-sent', pair: this.#pair(tx.pair), tx: txId(tx) });
  }

  consentLost(p: CandidatePair): void {
    const expired = this.#ctx.now - p.lastConsentAt >= this.#ctx.config.consentTimeoutMs;
    this.#emit({ t: this.#t, type: 'consent-lost', pair: this.#pair(p), reason: expired ? 'expired' : 'revoked' });
  }
}

/** The transaction id of a transaction, hex (read from the request it sent: bytes 8..20 of the STUN header). */
function txId(tx: Tx): string {
  return hex(tx.request.data.subarray(8, 20));
}
