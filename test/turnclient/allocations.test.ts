/**
 * Allocations alone, in virtual time: the TURN part of the agent without any gatherer or ICE core. The test plays the
 * gatherer (requests and `relay-result`), the core (relayed transmits to wrap) and a scripted TURN server.
 */
import { describe, expect, it } from 'vitest';
import type { RelayAllocationRequest } from '../../src/candidates/gatherer.js';
import { Attr, attr, decodeStunMessage, encodeStunMessage, StunMethod, type DecodedStunMessage, type StunAttribute } from '../../src/stun/index.js';
import { Allocations, type AllocationsEvent } from '../../src/turnclient/allocations.js';
import { TurnAttr } from '../../src/turnclient/index.js';
import type { Datagram, TransportAddress } from '../../src/types.js';
import { challenge, errorAttrs, KEY, LOCAL, MAPPED, RELAYED, SERVER, seededRandom } from './scripted.js';

const PEER: TransportAddress = { address: '203.0.113.5', port: 6000 };
const STREAM_LOCAL: TransportAddress = { address: '10.0.0.2', port: 41000 };

function request(transport: 'udp' | 'tcp' | 'tls' = 'udp', id = 'r1'): RelayAllocationRequest {
  return { id, base: LOCAL, component: 1, server: { server: SERVER, transport, username: 'user', credential: 'pass' } };
}

function drain(a: Allocations): { transmits: Datagram[]; events: AllocationsEvent[] } {
  const transmits: Datagram[] = [];
  const events: AllocationsEvent[] = [];
  for (let d = a.pollTransmit(); d; d = a.pollTransmit()) transmits.push(d);
  for (let e = a.pollEvent(); e; e = a.pollEvent()) events.push(e);
  return { transmits, events };
}

function answer(req: DecodedStunMessage, cls: 'success' | 'error', build: (txid: Uint8Array) => StunAttribute[], key?: Uint8Array): Uint8Array {
  return encodeStunMessage(
    { method: req.method, cls, transactionId: req.transactionId, attributes: build(req.transactionId) },
    key ? { integrityKey: key, integrity: 'sha1', fingerprint: true } : { fingerprint: true },
  );
}

const allocated = (txid: Uint8Array) => [
  attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, txid),
  attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, txid),
  attr(TurnAttr.LIFETIME, 600, txid),
];

/** Runs the 401 round and the authenticated Allocate; returns the events of the success. */
function allocate(a: Allocations, local: TransportAddress, transport?: 'tcp' | 'tls'): AllocationsEvent[] {
  const from = (data: Uint8Array): Datagram => ({ local, remote: SERVER, data, ...(transport ? { transport } : {}) });
  const first = drain(a).transmits;
  expect(first).toHaveLength(1);
  expect(a.handleReceive(10, from(answer(decodeStunMessage(first[0]!.data), 'error', challenge())))).toBe(true);
  const second = drain(a).transmits;
  expect(second).toHaveLength(1);
  expect(a.handleReceive(20, from(answer(decodeStunMessage(second[0]!.data), 'success', allocated, KEY)))).toBe(true);
  return drain(a).events;
}

describe('Allocations (virtual time)', () => {
  it('UDP: allocates from the host base and answers the gatherer that asked (stream and request id)', () => {
    const a = new Allocations({ random: seededRandom(3) });
    expect(a.idle).toBe(true);
    a.allocate(0, 2, request('udp', 'r7'));
    expect(a.size).toBe(1);
    const events = allocate(a, LOCAL);
    expect(events).toEqual([{ type: 'relay-result', stream: 2, id: 'r7', result: { ok: true, relayed: RELAYED, mapped: MAPPED } }]);
  });

  it('wraps only transmits from a relayed address, and unwrapped peer data comes out on the relayed address', () => {
    const a = new Allocations({ random: seededRandom(3) });
    expect(a.wrap(0, { local: RELAYED, remote: PEER, data: new Uint8Array([1]) })).toBe(false); // nothing allocated yet
    a.allocate(0, 0, request());
    allocate(a, LOCAL);
    expect(a.wrap(30, { local: LOCAL, remote: PEER, data: new Uint8Array([1]) })).toBe(false);
    expect(a.wrap(30, { local: RELAYED, remote: PEER, data: new Uint8Array([1, 2, 3]) })).toBe(true);
    // RFC 8656 §9: a permission first, the data then goes out in a Send indication (or waits for the permission).
    const out = drain(a).transmits;
    expect(out.length).toBeGreaterThan(0);
    expect(out.every((d) => d.remote.address === SERVER.address && d.local === LOCAL)).toBe(true);
    expect(decodeStunMessage(out[0]!.data).method).toBe(StunMethod.CreatePermission);
    // A Data indication from the server reaches the core as if it arrived on the relayed address.
    const txid = new Uint8Array(12).fill(9);
    const indication = encodeStunMessage({
      method: StunMethod.Data,
      cls: 'indication',
      transactionId: txid,
      attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, PEER, txid), attr(TurnAttr.DATA, new Uint8Array([7, 7]), txid)],
    });
    expect(a.handleReceive(40, { local: LOCAL, remote: SERVER, data: indication })).toBe(true);
    const { events } = drain(a);
    expect(events).toEqual([{ type: 'peer-data', datagram: { local: RELAYED, remote: PEER, data: new Uint8Array([7, 7]) } }]);
  });

  it('a datagram from another server or on another base is not taken', () => {
    const a = new Allocations({ random: seededRandom(3) });
    a.allocate(0, 0, request());
    drain(a);
    const stray = new Uint8Array(20);
    expect(a.handleReceive(5, { local: LOCAL, remote: { address: '192.0.2.99', port: 3478 }, data: stray })).toBe(false);
    expect(a.handleReceive(5, { local: { address: '10.0.0.3', port: 50000 }, remote: SERVER, data: stray })).toBe(false);
  });

  it('486 on Allocate: one relay-result that tells the gatherer to fall back to STUN (RFC 8445 §5.1.1.2)', () => {
    const a = new Allocations({ random: seededRandom(3) });
    a.allocate(0, 0, request());
    const req = decodeStunMessage(drain(a).transmits[0]!.data);
    a.handleReceive(10, { local: LOCAL, remote: SERVER, data: answer(req, 'error', errorAttrs(486, 'Allocation Quota Reached')) });
    const { events } = drain(a);
    expect(events).toEqual([{ type: 'relay-result', stream: 0, id: 'r1', result: expect.objectContaining({ ok: false, insufficientCapacity: true }) }]);
  });

  it('a cancelled request is released when it succeeds late, never reported', () => {
    const a = new Allocations({ random: seededRandom(3) });
    a.allocate(0, 0, request());
    const [first] = drain(a).transmits;
    a.cancel(1, 0, 'r1');
    expect(drain(a).events).toEqual([]);
    // The Allocate is still in flight and a server without authentication may grant it: not released yet.
    expect(a.released).toBe(false);
    const from = (data: Uint8Array): Datagram => ({ local: LOCAL, remote: SERVER, data });
    a.handleReceive(10, from(answer(decodeStunMessage(first!.data), 'success', allocated)));
    const late = drain(a);
    expect(late.events).toEqual([]); // never reported to the gatherer
    const del = decodeStunMessage(late.transmits[0]!.data);
    expect([del.method, del.attributes.some((x) => x.type === TurnAttr.LIFETIME.type)]).toEqual([StunMethod.Refresh, true]);
    a.handleReceive(20, from(answer(del, 'success', (id) => [attr(TurnAttr.LIFETIME, 0, id)])));
    drain(a);
    expect(a.released).toBe(true);
  });

  it('a cancelled request whose Allocate is challenged is released at once: nothing exists on the server', () => {
    const a = new Allocations({ random: seededRandom(3) });
    a.allocate(0, 0, request());
    const [first] = drain(a).transmits;
    a.cancel(1, 0, 'r1');
    a.handleReceive(10, { local: LOCAL, remote: SERVER, data: answer(decodeStunMessage(first!.data), 'error', challenge()) });
    expect(drain(a).transmits).toEqual([]); // no authenticated Allocate after the cancel
    expect(a.released).toBe(true);
  });

  it('TCP: asks for a connection, allocates on it once connected, and frees it on release', () => {
    const a = new Allocations({ random: seededRandom(3) });
    a.allocate(0, 1, request('tcp', 'r2'));
    const { transmits, events } = drain(a);
    expect(transmits).toEqual([]); // nothing leaves before the connection exists
    expect(events).toEqual([{ type: 'turn-connect', id: '1:r2', server: SERVER, transport: 'tcp', base: LOCAL }]);
    expect(a.turnConnected(5, '1:r2', STREAM_LOCAL)).toBe(true);
    const ok = allocate(a, STREAM_LOCAL, 'tcp');
    expect(ok).toEqual([{ type: 'relay-result', stream: 1, id: 'r2', result: { ok: true, relayed: RELAYED, mapped: MAPPED } }]);
    a.close(30);
    expect(drain(a).transmits.every((d) => d.transport === 'tcp')).toBe(true);
    expect(a.turnConnected(31, '1:r2', STREAM_LOCAL)).toBe(false); // closed: the edge closes whatever it opened
  });

  it('TCP: a failed connection answers the gatherer; an unconnected request is abandoned on close', () => {
    const a = new Allocations({ random: seededRandom(3) });
    a.allocate(0, 0, request('tcp', 'r1'));
    a.allocate(0, 0, request('tls', 'r2'));
    drain(a);
    a.turnConnectionFailed(3, '0:r1', 'connect ECONNREFUSED');
    expect(drain(a).events).toEqual([{ type: 'relay-result', stream: 0, id: 'r1', result: { ok: false, reason: 'connect ECONNREFUSED' } }]);
    a.close(4);
    expect(drain(a).events).toEqual([{ type: 'turn-disconnect', id: '0:r2' }]);
    expect(a.released).toBe(true);
  });
});
