/**
 * The NAT matrix: two full ICE agents (AgentMachine), each on the public network or behind a NAT with RFC 4787
 * behaviour, with and without TURN, on the deterministic virtual network. Each cell asserts the outcome that theory
 * predicts — connect (same pair both sides, data both ways, the predicted candidate types) or fail cleanly (RFC 8863
 * grace, no exception, no traffic afterwards) — and the whole matrix must run in well under five seconds.
 *
 * Theory (RFC 4787 §4.1 mapping, §5 filtering; RFC 8656 §9 permissions are per IP address):
 *
 * - A public host is reachable by anyone, and the peer's checks reach it whatever its NAT does: always direct.
 * - Two endpoint-independent-mapping (cone) NATs: each side's check to the other's server-reflexive address leaves
 *   through the same mapping the STUN server saw (EIM), and opens its own filter towards exactly the peer's
 *   server-reflexive address, which is where the peer's checks come from: srflx↔srflx works for every filtering.
 * - Symmetric (APDM) vs cone: the symmetric side's check to the cone's srflx leaves from a NEW external port. The
 *   cone side accepts it only if its filter does not look at that port: EIF (full cone) and ADF (restricted cone,
 *   same IP as the peer's srflx it contacted) accept it, APDF (port-restricted) drops it. Once in, the cone side
 *   learns a peer-reflexive candidate and its triggered check goes back to that new port, which the symmetric NAT
 *   admits (its mapping contacted exactly the cone's srflx). The symmetric side's srflx candidate is useless (its
 *   mapping belongs to the STUN server).
 * - Symmetric vs port-restricted, symmetric vs symmetric: no direct path. A TURN relay on either side fixes it: the
 *   relay's permission is per peer IP, so the peer's checks from any new NAT port get in, and the answer goes back
 *   to that port through the peer's NAT, whose mapping contacted exactly the relayed address.
 *
 * Selected pair, as (local type, remote type) seen by one side: its own local candidate is `host` when public,
 * `srflx` behind a cone NAT (the mapped address is its srflx), `prflx` behind a symmetric NAT (a mapping nobody
 * signalled), `relay` through TURN. The peer sees it as the same type, or as `prflx` when the peer's check arrived
 * before the candidate was trickled (RFC 8838 §11).
 */
import { describe, expect, it } from 'vitest';
import type { CandidateType } from '../../src/candidates/candidate.js';
import { NAT_SHORT, scenario, type NatKind, type Scenario, type Side } from './harness.js';

const KINDS: readonly NatKind[] = ['none', 'full-cone', 'restricted-cone', 'port-restricted', 'symmetric'];

/** Expected outcome of a cell. */
type Expectation = { readonly connects: false } | { readonly connects: true; readonly path: 'direct' | 'relay' };

/**
 * The theory table: can two sides with these NATs talk directly (no TURN)? Symmetric so only one order is written;
 * `'-'` means no direct path.
 *
 * |            | public | EIM+EIF | EIM+ADF | EIM+APDF | APDM+APDF |
 * |------------|--------|---------|---------|----------|-----------|
 * | public     | host   | srflx   | srflx   | srflx    | prflx     |
 * | EIM+EIF    |        | srflx   | srflx   | srflx    | prflx     |
 * | EIM+ADF    |        |         | srflx   | srflx    | prflx     |
 * | EIM+APDF   |        |         |         | srflx    | -         |
 * | APDM+APDF  |        |         |         |          | -         |
 *
 * With TURN the '-' cells connect through a relay; every other cell still picks its direct path (relayed pairs
 * have the lowest priority, RFC 8445 §5.1.2.2).
 */
function directPossible(a: NatKind, b: NatKind): boolean {
  if (a === 'none' || b === 'none') return true;
  const cone = (k: NatKind) => k !== 'symmetric';
  if (cone(a) && cone(b)) return true;
  // One symmetric side: the other side's filter must ignore the source port (EIF or ADF).
  const other = a === 'symmetric' ? b : a;
  return other === 'full-cone' || other === 'restricted-cone';
}

function expectation(a: NatKind, b: NatKind, turnA: boolean, turnB: boolean): Expectation {
  if (directPossible(a, b)) return { connects: true, path: 'direct' };
  if (turnA || turnB) return { connects: true, path: 'relay' };
  return { connects: false };
}

/** The local candidate type a side uses on a direct path (see the module comment). */
function directLocalType(kind: NatKind): CandidateType {
  return kind === 'none' ? 'host' : kind === 'symmetric' ? 'prflx' : 'srflx';
}

/** How the peer may see that candidate. */
function seenAs(t: CandidateType): readonly CandidateType[] {
  return t === 'host' ? ['host'] : [t, 'prflx'];
}

interface Cell {
  readonly a: NatKind;
  readonly b: NatKind;
  readonly turnA: boolean;
  readonly turnB: boolean;
}

const CELLS: readonly Cell[] = [
  ...[false, true].flatMap((turn) => KINDS.flatMap((a) => KINDS.map((b) => ({ a, b, turnA: turn, turnB: turn })))),
  // TURN on one side only is enough where a relay is needed.
  { a: 'symmetric', b: 'symmetric', turnA: true, turnB: false },
  { a: 'symmetric', b: 'symmetric', turnA: false, turnB: true },
  { a: 'port-restricted', b: 'symmetric', turnA: true, turnB: false },
  { a: 'port-restricted', b: 'symmetric', turnA: false, turnB: true },
];

const cellName = (c: Cell): string =>
  `${NAT_SHORT[c.a]} vs ${NAT_SHORT[c.b]}, TURN ${c.turnA && c.turnB ? 'both' : c.turnA ? 'a only' : c.turnB ? 'b only' : 'none'}`;

interface Outcome {
  readonly sc: Scenario;
  /** Both sides reached connected/completed with a pair selected. */
  readonly connected: boolean;
  /** Both sides reached failed. */
  readonly failed: boolean;
}

/** Runs one cell until both sides connect or both fail (90 s of virtual time at most). */
function runCell(c: Cell, seed = 'matrix'): Outcome {
  const sc = scenario({
    seed: `${seed}:${c.a}:${c.b}:${c.turnA}:${c.turnB}`,
    a: { nat: c.a, turn: c.turnA },
    b: { nat: c.b, turn: c.turnB },
  }).start();
  const failed = () => sc.state(sc.a) === 'failed' && sc.state(sc.b) === 'failed';
  sc.net.runUntilTrue(() => (sc.connected() && sc.selectedEverywhere()) || failed(), 90_000);
  return { sc, connected: sc.connected() && sc.selectedEverywhere(), failed: failed() };
}

const everState = (s: Side, state: string) => s.states.some((x) => x.state === state);

function assertConnected(c: Cell, e: Extract<Expectation, { connects: true }>, o: Outcome): void {
  const { sc } = o;
  expect(o.connected).toBe(true);
  expect(everState(sc.a, 'failed') || everState(sc.b, 'failed')).toBe(false);
  // A pair to send on within a few seconds of virtual time: the first valid pair (RFC 8445 §12.1).
  expect(sc.net.now).toBeLessThan(5_000);
  // Both conclude (RFC 8445 §8.1.2) shortly after; the nominated pair is what theory predicts.
  const connectedAt = sc.net.now;
  expect(sc.net.runUntilTrue(() => sc.state(sc.a) === 'completed' && sc.state(sc.b) === 'completed', 5_000)).toBe(true);
  // Regular nomination on evidence (nomination.ts): no waiting out a private pair that cannot answer.
  expect(sc.net.now - connectedAt).toBeLessThanOrEqual(300);
  expect(sc.selected(sc.a)!.nominated && sc.selected(sc.b)!.nominated).toBe(true);
  expect(sc.sameSelectedPair()).toBe(true);
  const pa = sc.selected(sc.a)!;
  const pb = sc.selected(sc.b)!;
  if (e.path === 'direct') {
    expect(pa.local.type).toBe(directLocalType(c.a));
    expect(pb.local.type).toBe(directLocalType(c.b));
    expect(seenAs(directLocalType(c.b))).toContain(pa.remote.type);
    expect(seenAs(directLocalType(c.a))).toContain(pb.remote.type);
  } else {
    // Exactly one end of the pair is a relayed address; it belongs to a side that has TURN.
    const relayA = pa.local.type === 'relay';
    const relayB = pb.local.type === 'relay';
    expect(relayA !== relayB).toBe(true);
    expect(relayA ? c.turnA : c.turnB).toBe(true);
    // The other side's view of the relay: relay, or prflx if the check beat the trickle.
    expect(['relay', 'prflx']).toContain(relayA ? pb.remote.type : pa.remote.type);
    // The non-relay end leaves its NAT: through a fresh mapping when symmetric.
    const other = relayA ? pb : pa;
    const otherKind = relayA ? c.b : c.a;
    expect(other.local.type).toBe(otherKind === 'symmetric' ? 'prflx' : 'srflx');
  }
  // Data both ways on the selected pair, once checks still in flight at completion have landed.
  sc.net.runFor(1_000);
  const relayedBefore = sc.turn.server.stats.toPeer + sc.turn.server.stats.toClient;
  expect(sc.exchange(sc.a, 'from a')).toBe(true);
  expect(sc.exchange(sc.b, 'from b')).toBe(true);
  const relayed = sc.turn.server.stats.toPeer + sc.turn.server.stats.toClient - relayedBefore;
  if (e.path === 'relay') expect(relayed).toBeGreaterThanOrEqual(2);
  else expect(relayed).toBe(0);
}

function assertFailed(o: Outcome): void {
  const { sc } = o;
  expect(o.failed).toBe(true);
  for (const side of [sc.a, sc.b]) {
    expect(everState(side, 'connected') || everState(side, 'completed')).toBe(false);
    // RFC 8863 §4: not before the PAC timer (39.5 s) from the start of checks (t = 0 here), and promptly after it.
    const failedAt = side.states.find((s) => s.state === 'failed')!.time;
    expect(failedAt).toBeGreaterThanOrEqual(39_500);
    expect(failedAt).toBeLessThan(41_000);
    // End-of-candidates had been signalled (RFC 8838 §8: no failure before it).
    expect(side.endOfCandidatesAt[0]).toBeDefined();
    expect(side.endOfCandidatesAt[0]!).toBeLessThanOrEqual(failedAt);
    expect(side.machine.send(sc.net.now, 0, 1, new Uint8Array([1]))).toBe(false);
  }
  // No livelock: two more minutes, and the agents send nothing at all (no checks, nothing retried).
  const mark = sc.net.trace.length;
  expect(() => sc.net.runFor(120_000)).not.toThrow();
  const agentSends = sc.net.trace.slice(mark).filter((t) => t.kind === 'send' && (t.node === 'a' || t.node === 'b'));
  expect(agentSends).toEqual([]);
  expect(sc.state(sc.a)).toBe('failed');
  expect(sc.state(sc.b)).toBe('failed');
}

describe('NAT matrix (two AgentMachines, RFC 4787 NATs, STUN and TURN on the virtual network)', () => {
  it('theory table is symmetric and matches the known classic results', () => {
    for (const a of KINDS) for (const b of KINDS) expect(directPossible(a, b)).toBe(directPossible(b, a));
    expect(directPossible('symmetric', 'port-restricted')).toBe(false);
    expect(directPossible('symmetric', 'symmetric')).toBe(false);
    expect(directPossible('symmetric', 'full-cone')).toBe(true);
    expect(directPossible('port-restricted', 'port-restricted')).toBe(true);
  });

  for (const c of CELLS) {
    const e = expectation(c.a, c.b, c.turnA, c.turnB);
    const verdict = e.connects ? `connects (${e.path})` : 'fails cleanly';
    it(`${cellName(c)}: ${verdict}`, () => {
      const o = runCell(c);
      if (e.connects) assertConnected(c, e, o);
      else assertFailed(o);
    });
  }

  it.each([
    { a: 'symmetric', b: 'port-restricted', turnA: true, turnB: true },
    { a: 'port-restricted', b: 'full-cone', turnA: false, turnB: false },
    { a: 'symmetric', b: 'symmetric', turnA: false, turnB: false },
  ] satisfies Cell[])('a cell replays exactly from its seed: $a vs $b, TURN $turnA/$turnB', (cell) => {
    const once = () => {
      const o = runCell(cell, 'replay');
      if (o.connected) expect(o.sc.exchange(o.sc.a, 'x')).toBe(true);
      o.sc.net.runFor(10_000);
      return o;
    };
    const one = once();
    const two = once();
    expect(one.sc.net.trace.length).toBeGreaterThan(20);
    expect(two.sc.transcript()).toBe(one.sc.transcript());
    expect(two.sc.net.now).toBe(one.sc.net.now);
    expect(two.sc.net.stats).toEqual(one.sc.net.stats);
    // A different seed gives a different run (NAT ports, transaction IDs), so the comparison above can fail.
    const other = runCell(cell, 'replay-2');
    expect(other.sc.transcript()).not.toBe(one.sc.transcript());
  });

  it('the whole matrix runs in well under 5 s of wall time', () => {
    const t0 = performance.now();
    for (const c of CELLS) {
      const o = runCell(c, 'speed');
      const e = expectation(c.a, c.b, c.turnA, c.turnB);
      expect(o.connected).toBe(e.connects);
      if (!e.connects) o.sc.net.runFor(60_000);
    }
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
