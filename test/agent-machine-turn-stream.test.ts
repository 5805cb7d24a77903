/**
 * AgentMachine with a TURN server reached over TCP/TLS (RFC 8656 §3.1), in virtual time: the test plays the IO edge
 * (answers `turn-connect`, carries bytes through a fake stream cut into uneven chunks and re-framed by
 * `StreamFramer`) and a scripted TURN server (responses built with the STUN encoder).
 */
import { describe, expect, it } from 'vitest';
import { AgentMachine, type AgentMachineEvent, type AgentMachineOptions } from '../src/agent-machine.js';
import type { Candidate } from '../src/candidates/candidate.js';
import { Attr, attr, decodeStunMessage, encodeStunMessage, getAttribute, shortTermKey, StunMethod, type DecodedStunMessage, type StunAttribute } from '../src/stun/index.js';
import { StreamFramer, TurnAttr } from '../src/turnclient/index.js';
import type { Datagram, TransportAddress } from '../src/types.js';
import { challenge, errorAttrs, KEY, MAPPED, RELAYED, SERVER, seededRandom } from './turnclient/scripted.js';

const BASE: TransportAddress = { address: '10.0.0.2', port: 50000 };
/** The local address of the edge's TCP connection (an ephemeral port, unrelated to the UDP base's). */
const STREAM_LOCAL: TransportAddress = { address: '10.0.0.2', port: 41000 };
const ALT_SERVER: TransportAddress = { address: '192.0.2.9', port: 3478 };
const ALT_LOCAL: TransportAddress = { address: '10.0.0.2', port: 41001 };
const PEER: TransportAddress = { address: '203.0.113.5', port: 6000 };

function machine(o: Partial<AgentMachineOptions> = {}, transport: 'tcp' | 'tls' = 'tcp'): AgentMachine {
  return new AgentMachine({
    random: seededRandom(7),
    role: 'controlling',
    bases: [{ address: BASE, component: 1 }],
    turnServers: [{ server: SERVER, transport, username: 'user', credential: 'pass' }],
    gatherTimeoutMs: 5000,
    ...o,
  });
}

function drainTransmits(m: AgentMachine): Datagram[] {
  const out: Datagram[] = [];
  for (let d = m.pollTransmit(); d; d = m.pollTransmit()) out.push(d);
  return out;
}

function drainEvents(m: AgentMachine): AgentMachineEvent[] {
  const out: AgentMachineEvent[] = [];
  for (let e = m.pollEvent(); e; e = m.pollEvent()) out.push(e);
  return out;
}

function connectEvent(ev: readonly AgentMachineEvent[]): Extract<AgentMachineEvent, { type: 'turn-connect' }> {
  const c = ev.find((e): e is Extract<AgentMachineEvent, { type: 'turn-connect' }> => e.type === 'turn-connect');
  if (!c) throw new Error(`no turn-connect in ${ev.map((e) => e.type).join(', ')}`);
  return c;
}

/** One STUN request written to the stream: checks it went out on the connection, and decodes it. */
function oneStreamRequest(m: AgentMachine, local = STREAM_LOCAL, server = SERVER, transport: 'tcp' | 'tls' = 'tcp'): DecodedStunMessage {
  const t = drainTransmits(m);
  expect(t).toHaveLength(1);
  expect(t[0]!.transport).toBe(transport);
  expect(t[0]!.local).toEqual(local);
  expect(t[0]!.remote).toEqual(server);
  return decodeStunMessage(t[0]!.data);
}

/**
 * The server side of the fake connection: responses are concatenated into one byte stream, cut into chunks of
 * `chunk` bytes (so frames straddle reads, as TCP allows), and re-framed as the Node edge does.
 */
class FakeStream {
  readonly #framer = new StreamFramer();
  constructor(
    readonly local: TransportAddress,
    readonly server: TransportAddress = SERVER,
    readonly transport: 'tcp' | 'tls' = 'tcp',
  ) {}

  /** Delivers the frames `bytes` completes; returns what the machine said for each. */
  deliver(m: AgentMachine, now: number, bytes: Uint8Array, chunk = 7): boolean[] {
    const taken: boolean[] = [];
    for (let i = 0; i < bytes.length; i += chunk) {
      for (const data of this.#framer.push(bytes.subarray(i, i + chunk))) {
        taken.push(m.handleReceive(now, { local: this.local, remote: this.server, data, transport: this.transport }));
      }
    }
    return taken;
  }
}

function response(req: DecodedStunMessage, cls: 'success' | 'error', build: (txid: Uint8Array) => StunAttribute[], key?: Uint8Array): Uint8Array {
  return encodeStunMessage(
    { method: req.method, cls, transactionId: req.transactionId, attributes: build(req.transactionId) },
    key ? { integrityKey: key, integrity: 'sha1', fingerprint: true } : { fingerprint: true },
  );
}

const allocSuccess = (txid: Uint8Array) => [
  attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, txid),
  attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, txid),
  attr(TurnAttr.LIFETIME, 600, txid),
];

/** gather → turn-connect → connected → 401 → authenticated Allocate → success, both answers in one stream read. */
function allocateOverStream(m: AgentMachine, transport: 'tcp' | 'tls' = 'tcp'): { id: string; stream: FakeStream; events: AgentMachineEvent[] } {
  m.gather(0);
  expect(drainTransmits(m)).toEqual([]); // nothing leaves before the connection exists
  const connect = connectEvent(drainEvents(m));
  expect(connect).toMatchObject({ server: SERVER, transport, base: BASE });
  expect(m.turnConnected(12, connect.id, STREAM_LOCAL)).toBe(true);
  const first = oneStreamRequest(m, STREAM_LOCAL, SERVER, transport);
  expect(first.method).toBe(StunMethod.Allocate);
  // RFC 8656 §7.1: the relayed transport is UDP even though the client speaks TCP/TLS to the server.
  expect(getAttribute(first, TurnAttr.REQUESTED_TRANSPORT)).toBe(17);
  const stream = new FakeStream(STREAM_LOCAL, SERVER, transport);
  expect(stream.deliver(m, 20, response(first, 'error', challenge()))).toEqual([true]);
  const second = oneStreamRequest(m, STREAM_LOCAL, SERVER, transport);
  expect(getAttribute(second, Attr.USERNAME)).toBe('user');
  expect(stream.deliver(m, 30, response(second, 'success', allocSuccess, KEY), 5)).toEqual([true]);
  return { id: connect.id, stream, events: drainEvents(m) };
}

describe('AgentMachine: TURN over a stream connection (virtual time)', () => {
  it('asks the edge for a connection, allocates over it, and reports a relayed candidate (no srflx from TCP)', () => {
    const m = machine({ iceTransportPolicy: 'all' });
    const { events } = allocateOverStream(m);
    const candidates = events.flatMap((e) => (e.type === 'candidate' ? [e.candidate] : []));
    // Host (announced at gather) came before; here only the relay: an Allocate over TCP maps a TCP address, which
    // is no UDP server-reflexive candidate (RFC 8445 §5.1.1.2 applies the mapping rule to UDP allocations only).
    expect(candidates.map((c) => c.type)).toEqual(['relay']);
    expect(candidates[0]).toMatchObject({ address: RELAYED.address, port: RELAYED.port, transport: 'udp', relatedAddress: MAPPED.address });
    expect(events.map((e) => e.type)).toContain('end-of-candidates');
    expect(m.gatheringState).toBe('complete');
  });

  it('TLS: the same, with every transmit tagged tls', () => {
    const m = machine({ iceTransportPolicy: 'relay' }, 'tls');
    const { events } = allocateOverStream(m, 'tls');
    expect(events.filter((e) => e.type === 'candidate')).toHaveLength(1);
  });

  it('checks from the relayed candidate leave through the stream: CreatePermission, then a Send indication', () => {
    const m = machine({ iceTransportPolicy: 'relay' });
    const { stream } = allocateOverStream(m);
    m.setRemoteParameters(0, { ufrag: 'rufr', pwd: 'remotepassword0123456789' });
    const remote: Candidate = { foundation: 'r1', component: 1, transport: 'udp', priority: 100, address: PEER.address, port: PEER.port, type: 'host' };
    m.addRemoteCandidate(40, 0, remote);
    let out: Datagram[] = [];
    for (let now = 40; now < 2000 && out.length === 0; now += 10) {
      m.handleTimeout(now);
      out = drainTransmits(m);
    }
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ local: STREAM_LOCAL, remote: SERVER, transport: 'tcp' });
    const perm = decodeStunMessage(out[0]!.data);
    expect(perm.method).toBe(StunMethod.CreatePermission);
    expect(getAttribute(perm, TurnAttr.XOR_PEER_ADDRESS)?.address).toBe(PEER.address);
    expect(stream.deliver(m, 2100, response(perm, 'success', () => [], KEY), 3)).toEqual([true]);
    const after = drainTransmits(m);
    expect(after.length).toBeGreaterThanOrEqual(1);
    for (const d of after) expect(d).toMatchObject({ local: STREAM_LOCAL, remote: SERVER, transport: 'tcp' });
    const send = decodeStunMessage(after[0]!.data);
    expect([send.method, send.cls]).toEqual([StunMethod.Send, 'indication']);
    expect(getAttribute(send, TurnAttr.XOR_PEER_ADDRESS)).toEqual(PEER);
  });

  it('stream frames reach only stream allocations; a UDP datagram from the server is not taken by the TCP client', () => {
    const m = machine({ iceTransportPolicy: 'relay' });
    const { stream } = allocateOverStream(m);
    const junk = encodeStunMessage({ method: StunMethod.Binding, cls: 'success', transactionId: new Uint8Array(12).fill(9), attributes: [] });
    // An unknown transaction on the connection: dropped, not handed to the gatherer or the core.
    expect(stream.deliver(m, 50, junk)).toEqual([false]);
    // The same bytes on UDP from the server to the stream's port: not the TCP client's.
    expect(m.handleReceive(50, { local: STREAM_LOCAL, remote: SERVER, data: junk })).toBe(false);
    // A frame on a connection no allocation uses.
    expect(m.handleReceive(50, { local: { address: '10.0.0.2', port: 49999 }, remote: SERVER, data: junk, transport: 'tcp' })).toBe(false);
    expect(drainTransmits(m)).toEqual([]);
  });

  it('a valid connectivity check tagged tcp is not answered (stream bytes never reach the ICE core); over UDP it is', () => {
    const m = machine({ iceTransportPolicy: 'all' });
    allocateOverStream(m);
    m.setRemoteParameters(0, { ufrag: 'rufr', pwd: 'remotepassword0123456789' });
    const local = m.core.getLocalParameters(0);
    const check = (): Uint8Array => {
      const transactionId = new Uint8Array(12).fill(3);
      return encodeStunMessage(
        {
          method: StunMethod.Binding,
          cls: 'request',
          transactionId,
          attributes: [attr(Attr.USERNAME, `${local.ufrag}:rufr`, transactionId), attr(Attr.PRIORITY, 1234, transactionId), attr(Attr.ICE_CONTROLLED, 5n, transactionId)],
        },
        { integrityKey: shortTermKey(local.pwd), integrity: 'sha1', fingerprint: true },
      );
    };
    expect(m.handleReceive(60, { local: BASE, remote: PEER, data: check(), transport: 'tcp' })).toBe(false);
    expect(drainTransmits(m)).toEqual([]);
    // Control: the same check over UDP is answered from the base.
    expect(m.handleReceive(61, { local: BASE, remote: PEER, data: check() })).toBe(true);
    const answered = drainTransmits(m).map((d) => decodeStunMessage(d.data)).filter((x) => x.cls === 'success');
    expect(answered).toHaveLength(1);
  });

  it('a refused connection fails the relay at once: server-failed with the reason, gathering completes', () => {
    const m = machine({ iceTransportPolicy: 'relay' });
    m.gather(0);
    const { id } = connectEvent(drainEvents(m));
    m.turnConnectionFailed(3, id, 'connect ECONNREFUSED');
    const ev = drainEvents(m);
    expect(ev).toContainEqual({ type: 'server-failed', kind: 'turn', server: SERVER, reason: 'connect ECONNREFUSED' });
    expect(ev.some((e) => e.type === 'candidate')).toBe(false);
    expect(m.gatheringState).toBe('complete');
    expect(m.released).toBe(true);
    // A late success for the abandoned attempt is refused (the edge then closes it).
    expect(m.turnConnected(4, id, STREAM_LOCAL)).toBe(false);
  });

  it('a connection that never completes is abandoned at gatherTimeoutMs with turn-disconnect', () => {
    const m = machine({ iceTransportPolicy: 'relay', gatherTimeoutMs: 1000 });
    m.gather(0);
    const { id } = connectEvent(drainEvents(m));
    expect(m.pollTimeout()).toBe(1000);
    m.handleTimeout(1000);
    const ev = drainEvents(m);
    expect(ev).toContainEqual({ type: 'turn-disconnect', id });
    expect(ev).toContainEqual({ type: 'server-failed', kind: 'turn', server: SERVER, reason: 'gather timeout' });
    expect(m.gatheringState).toBe('complete');
    expect(m.turnConnected(1001, id, STREAM_LOCAL)).toBe(false);
  });

  it('the connection closing while allocating fails the relay; after allocation it reports the loss and drops sends', () => {
    const a = machine({ iceTransportPolicy: 'relay' });
    a.gather(0);
    const { id } = connectEvent(drainEvents(a));
    a.turnConnected(5, id, STREAM_LOCAL);
    drainTransmits(a);
    a.turnConnectionClosed(8, id);
    const ev = drainEvents(a);
    expect(ev).toContainEqual({ type: 'turn-disconnect', id });
    expect(ev.some((e) => e.type === 'server-failed' && e.kind === 'turn')).toBe(true);
    expect(a.gatheringState).toBe('complete');

    const b = machine({ iceTransportPolicy: 'relay' });
    const { id: idB } = allocateOverStream(b);
    b.setRemoteParameters(0, { ufrag: 'rufr', pwd: 'remotepassword0123456789' });
    b.turnConnectionClosed(40, idB);
    const lost = drainEvents(b);
    expect(lost).toContainEqual({ type: 'turn-disconnect', id: idB });
    expect(lost.find((e) => e.type === 'server-failed')).toMatchObject({ kind: 'turn', server: SERVER, reason: expect.stringMatching(/^allocation lost: /) });
    // Checks from the dead relayed candidate are dropped, never thrown or sent.
    b.addRemoteCandidate(41, 0, { foundation: 'r1', component: 1, transport: 'udp', priority: 100, address: PEER.address, port: PEER.port, type: 'host' });
    for (let now = 41; now < 1000; now += 10) b.handleTimeout(now);
    expect(drainTransmits(b)).toEqual([]);
    expect(b.released).toBe(true);
  });

  it('close() deallocates over the stream (Refresh LIFETIME 0), then asks the edge to disconnect', () => {
    const m = machine({ iceTransportPolicy: 'relay' });
    const { id, stream } = allocateOverStream(m);
    m.close(100);
    const refresh = oneStreamRequest(m);
    expect(refresh.method).toBe(StunMethod.Refresh);
    expect(getAttribute(refresh, TurnAttr.LIFETIME)).toBe(0);
    expect(m.released).toBe(false);
    expect(stream.deliver(m, 110, response(refresh, 'success', (t) => [attr(TurnAttr.LIFETIME, 0, t)], KEY))).toEqual([true]);
    expect(drainEvents(m)).toContainEqual({ type: 'turn-disconnect', id });
    expect(m.released).toBe(true);
  });

  it('close() while connecting cancels the attempt', () => {
    const m = machine({ iceTransportPolicy: 'relay' });
    m.gather(0);
    const { id } = connectEvent(drainEvents(m));
    m.close(1);
    expect(drainEvents(m)).toContainEqual({ type: 'turn-disconnect', id });
    expect(m.turnConnected(2, id, STREAM_LOCAL)).toBe(false);
    expect(m.released).toBe(true);
  });

  it('300 Try Alternate: the edge is asked to connect to the alternate, and the Allocate is retried there', () => {
    const m = machine({ iceTransportPolicy: 'relay' });
    m.gather(0);
    const { id } = connectEvent(drainEvents(m));
    m.turnConnected(5, id, STREAM_LOCAL);
    const first = oneStreamRequest(m);
    const stream = new FakeStream(STREAM_LOCAL);
    stream.deliver(m, 10, response(first, 'error', errorAttrs(300, 'Try Alternate', (t) => [attr(Attr.ALTERNATE_SERVER, ALT_SERVER, t), attr(Attr.ALTERNATE_DOMAIN, 'turn2.example.org', t)])));
    const again = connectEvent(drainEvents(m));
    expect(again).toEqual({ type: 'turn-connect', id, server: ALT_SERVER, transport: 'tcp', base: BASE, domain: 'turn2.example.org' });
    expect(drainTransmits(m)).toEqual([]);
    expect(m.turnConnected(20, id, ALT_LOCAL)).toBe(true);
    const retry = oneStreamRequest(m, ALT_LOCAL, ALT_SERVER);
    expect(retry.method).toBe(StunMethod.Allocate);
    const alt = new FakeStream(ALT_LOCAL, ALT_SERVER);
    alt.deliver(m, 30, response(retry, 'error', challenge()));
    const auth = oneStreamRequest(m, ALT_LOCAL, ALT_SERVER);
    alt.deliver(m, 40, response(auth, 'success', allocSuccess, KEY));
    expect(drainEvents(m).filter((e) => e.type === 'candidate')).toHaveLength(1);
    expect(m.gatheringState).toBe('complete');
  });

  it('300 Try Alternate whose reconnect fails: the relay fails and the allocation ends', () => {
    const m = machine({ iceTransportPolicy: 'relay' });
    m.gather(0);
    const { id } = connectEvent(drainEvents(m));
    m.turnConnected(5, id, STREAM_LOCAL);
    const first = oneStreamRequest(m);
    new FakeStream(STREAM_LOCAL).deliver(m, 10, response(first, 'error', errorAttrs(300, 'Try Alternate', (t) => [attr(Attr.ALTERNATE_SERVER, ALT_SERVER, t)])));
    connectEvent(drainEvents(m));
    m.turnConnectionFailed(20, id, 'connect ETIMEDOUT');
    const ev = drainEvents(m);
    expect(ev).toContainEqual({ type: 'server-failed', kind: 'turn', server: SERVER, reason: 'after redirect: connect ETIMEDOUT' });
    expect(ev).toContainEqual({ type: 'turn-disconnect', id });
    expect(m.gatheringState).toBe('complete');
    expect(m.released).toBe(true);
  });

  it('UDP TURN servers are untouched: no turn-connect, the Allocate leaves from the host base', () => {
    const m = new AgentMachine({
      random: seededRandom(7),
      bases: [{ address: BASE, component: 1 }],
      turnServers: [{ server: SERVER, transport: 'udp', username: 'user', credential: 'pass' }],
    });
    m.gather(0);
    expect(drainEvents(m).some((e) => e.type === 'turn-connect')).toBe(false);
    const t = drainTransmits(m);
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({ local: BASE, remote: SERVER });
    expect(t[0]!.transport ?? 'udp').toBe('udp');
  });
});
