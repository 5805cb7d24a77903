import { describe, expect, it } from 'vitest';
import { TurnError } from '../../src/errors.js';
import {
  Attr,
  attr,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  hasAttribute,
  longTermKey,
  StunMethod,
  verifyIntegrity,
  type DecodedStunMessage,
} from '../../src/stun/index.js';
import {
  decodeChannelData,
  encodeChannelData,
  nonceCookie,
  TurnAttr,
  type TurnClient,
  type TurnClientEvent,
} from '../../src/turnclient/index.js';
import type { TransportAddress } from '../../src/types.js';
import {
  challenge,
  datagramFromServer,
  errorAttrs,
  events,
  KEY,
  LOCAL,
  makeClient,
  MAPPED,
  NONCE,
  oneRequest,
  PasswordAlgorithm,
  REALM,
  RELAYED,
  reply,
  SERVER,
  transmits,
} from './scripted.js';

const PEER: TransportAddress = { address: '203.0.113.5', port: 6000 };
const PEER2: TransportAddress = { address: '203.0.113.6', port: 7000 };

function allocSuccess(lifetime: number, relayed: TransportAddress[] = [RELAYED]) {
  return (txid: Uint8Array) => [
    ...relayed.map((r) => attr(TurnAttr.XOR_RELAYED_ADDRESS, r, txid)),
    attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, txid),
    attr(TurnAttr.LIFETIME, lifetime, txid),
  ];
}

/** Runs the 401 → authenticated Allocate → success flow at `now`; returns the authenticated request. */
function allocate(c: TurnClient, now = 0, lifetime = 600): DecodedStunMessage {
  c.allocate(now);
  const first = oneRequest(c);
  reply(c, now, first, 'error', challenge());
  const second = oneRequest(c);
  reply(c, now, second, 'success', allocSuccess(lifetime), { key: KEY });
  const ev = events(c);
  expect(ev.map((e) => e.type)).toEqual(['allocated']);
  return second;
}

function errorOf(ev: TurnClientEvent[]): Extract<TurnClientEvent, { type: 'error' }> {
  const e = ev.find((x) => x.type === 'error');
  expect(e).toBeDefined();
  return e as Extract<TurnClientEvent, { type: 'error' }>;
}

/** Advances virtual time step by step to `until`, answering nothing; returns every transmit. */
function runUntil(c: TurnClient, from: number, until: number): { at: number; msg: Uint8Array }[] {
  const out: { at: number; msg: Uint8Array }[] = [];
  let t = from;
  for (let guard = 0; guard < 10_000; guard++) {
    const next = c.pollTimeout();
    if (next === undefined || next > until) break;
    t = Math.max(t, next);
    c.handleTimeout(t);
    for (const d of transmits(c)) out.push({ at: t, msg: d.data });
  }
  return out;
}

describe('Allocate and long-term credentials (RFC 8656 §7, RFC 8489 §9.2)', () => {
  it('sends the first Allocate unauthenticated, then retries the 401 with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY', () => {
    const c = makeClient({ lifetimeSec: 900 });
    c.allocate(0);
    const first = oneRequest(c);
    expect(first.method).toBe(StunMethod.Allocate);
    expect(first.cls).toBe('request');
    expect(getAttribute(first, TurnAttr.REQUESTED_TRANSPORT)).toBe(17);
    expect(getAttribute(first, TurnAttr.LIFETIME)).toBe(900);
    expect(getAttribute(first, Attr.SOFTWARE)).toBe('icewire-test');
    for (const t of [Attr.USERNAME, Attr.REALM, Attr.NONCE]) expect(hasAttribute(first, t)).toBe(false);
    expect(first.integrityOffset).toBe(-1);
    expect(first.hasFingerprint).toBe(true);

    expect(reply(c, 10, first, 'error', challenge())).toBe(true);
    const second = oneRequest(c);
    expect(second.transactionId).not.toEqual(first.transactionId);
    expect(getAttribute(second, Attr.USERNAME)).toBe('user');
    expect(getAttribute(second, Attr.REALM)).toBe(REALM);
    expect(getAttribute(second, Attr.NONCE)).toBe(NONCE);
    expect(hasAttribute(second, Attr.PASSWORD_ALGORITHM)).toBe(false);
    expect(verifyIntegrity(second, longTermKey('user', REALM, 'pass'), 'sha1')).toBe('ok');
    expect(second.integritySha256Offset).toBe(-1);

    reply(c, 20, second, 'success', allocSuccess(900), { key: KEY });
    const [ev] = events(c);
    expect(ev).toEqual({ type: 'allocated', relayed: [RELAYED], mapped: MAPPED, lifetimeSec: 900, addressErrors: [], reservationToken: undefined });
    expect(c.state).toBe('allocated');
    expect(c.stats.authRetries).toBe(1);
  });

  it('uses SHA-256 key, PASSWORD-ALGORITHM and MESSAGE-INTEGRITY-SHA256 when the server offers PASSWORD-ALGORITHMS', () => {
    const c = makeClient();
    c.allocate(0);
    const first = oneRequest(c);
    const nonce = nonceCookie({ passwordAlgorithms: true, usernameAnonymity: false }) + 'abc';
    reply(c, 0, first, 'error', challenge(401, nonce, [PasswordAlgorithm.MD5, PasswordAlgorithm.SHA256]));
    const second = oneRequest(c);
    // RFC 8656 §6: both offered → SHA-256; RFC 8489 §9.2.5: the list is echoed as received.
    expect(getAttribute(second, Attr.PASSWORD_ALGORITHM)?.algorithm).toBe(PasswordAlgorithm.SHA256);
    expect(getAttribute(second, Attr.PASSWORD_ALGORITHMS)?.map((a) => a.algorithm)).toEqual([PasswordAlgorithm.MD5, PasswordAlgorithm.SHA256]);
    expect(second.integrityOffset).toBe(-1);
    const key = longTermKey('user', REALM, 'pass', PasswordAlgorithm.SHA256);
    expect(key.length).toBe(32);
    expect(verifyIntegrity(second, key, 'sha256')).toBe('ok');
    // A success signed only with SHA-1 MESSAGE-INTEGRITY is not acceptable any more: dropped and counted.
    reply(c, 0, second, 'success', allocSuccess(600), { key, integrity: 'sha1' });
    expect(events(c)).toEqual([]);
    expect(c.stats.unauthenticated).toBe(1);
    reply(c, 0, second, 'success', allocSuccess(600), { key, integrity: 'sha256' });
    expect(events(c).map((e) => e.type)).toEqual(['allocated']);
  });

  it('refuses to retry when the nonce cookie announces PASSWORD-ALGORITHMS but the attribute is missing (bid-down)', () => {
    const c = makeClient();
    c.allocate(0);
    const first = oneRequest(c);
    reply(c, 0, first, 'error', challenge(401, nonceCookie({ passwordAlgorithms: true, usernameAnonymity: false }) + 'x'));
    expect(transmits(c)).toEqual([]);
    const e = errorOf(events(c));
    expect(e.error.errorCode).toBe(401);
    expect(e.fatal).toBe(true);
  });

  it('uses USERHASH when the nonce cookie sets username anonymity', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge(401, nonceCookie({ passwordAlgorithms: false, usernameAnonymity: true }) + 'y'));
    const second = oneRequest(c);
    expect(hasAttribute(second, Attr.USERNAME)).toBe(false);
    expect(getAttribute(second, Attr.USERHASH)?.length).toBe(32);
  });

  it('reports wrong credentials as a typed 401 error after one authenticated retry, without a third request', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    const second = oneRequest(c);
    reply(c, 5, second, 'error', challenge(401, 'nonce-2'));
    expect(transmits(c)).toEqual([]);
    const e = errorOf(events(c));
    expect(e.error).toBeInstanceOf(TurnError);
    expect(e.error.code).toBe('ERR_TURN');
    expect(e.error.errorCode).toBe(401);
    expect(e.error.reason).toBe('unauthorized');
    expect(e.operation).toBe('allocate');
    expect(c.state).toBe('failed');
    expect(c.pollTimeout()).toBeUndefined();
  });

  it.each([
    [403, 'forbidden'],
    [437, 'allocation-mismatch'],
    [440, 'address-family-not-supported'],
    [486, 'quota-reached'],
    [508, 'insufficient-capacity'],
    [599, 'error-response'],
  ] as const)('maps Allocate error %i to reason %s', (code, reason) => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    reply(c, 0, oneRequest(c), 'error', errorAttrs(code, 'nope'), { key: KEY });
    const e = errorOf(events(c));
    expect(e.error.errorCode).toBe(code);
    expect(e.error.reason).toBe(reason);
    expect(e.fatal).toBe(true);
    expect(c.state).toBe('failed');
  });

  it('retries 438 Stale Nonce with the new nonce, and gives up after 3 stale answers in a row', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    let req = oneRequest(c);
    for (let i = 0; i < 3; i++) {
      reply(c, 0, req, 'error', challenge(438, `fresh-${i}`));
      req = oneRequest(c);
      expect(getAttribute(req, Attr.NONCE)).toBe(`fresh-${i}`);
      expect(verifyIntegrity(req, KEY, 'sha1')).toBe('ok');
    }
    expect(c.stats.staleNonceRetries).toBe(3);
    reply(c, 0, req, 'error', challenge(438, 'fresh-3'));
    expect(transmits(c)).toEqual([]);
    const e = errorOf(events(c));
    expect(e.error.errorCode).toBe(438);
    expect(e.error.reason).toBe('stale-nonce');
  });

  it('follows 300 ALTERNATE-SERVER once over UDP, unauthenticated to the new server, and refuses a second redirect', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    const alt: TransportAddress = { address: '192.0.2.99', port: 3479 };
    reply(c, 1, oneRequest(c), 'error', errorAttrs(300, 'Try Alternate', (t) => [attr(Attr.ALTERNATE_SERVER, alt, t)]), { key: KEY });
    expect(events(c)).toEqual([{ type: 'redirect', server: alt, domain: undefined }]);
    const t = transmits(c);
    expect(t).toHaveLength(1);
    expect(t[0]!.remote).toEqual(alt);
    const m = decodeStunMessage(t[0]!.data);
    expect(m.method).toBe(StunMethod.Allocate);
    expect(m.integrityOffset).toBe(-1);
    expect(c.server).toEqual(alt);
    // The old server's address no longer counts as "from the server".
    const alt2: TransportAddress = { address: '192.0.2.100', port: 3478 };
    const data300 = encodeStunMessage({ method: m.method, cls: 'error', transactionId: m.transactionId, attributes: errorAttrs(300, 'Try Alternate', (x) => [attr(Attr.ALTERNATE_SERVER, alt2, x)])(m.transactionId) });
    expect(c.handleReceive(2, datagramFromServer(data300))).toBe(false);
    expect(c.handleReceive(2, datagramFromServer(data300, { from: alt }))).toBe(true);
    const e = errorOf(events(c));
    expect(e.error.errorCode).toBe(300);
    expect(e.error.reason).toBe('try-alternate');
  });

  it('over TCP a 300 waits for the edge to reconnect (redirectConnected) before retrying', () => {
    const c = makeClient({ transport: 'tcp' });
    c.allocate(0);
    const first = oneRequest(c);
    const alt: TransportAddress = { address: '192.0.2.99', port: 3478 };
    reply(c, 0, first, 'error', errorAttrs(300, 'Try Alternate', (t) => [attr(Attr.ALTERNATE_SERVER, alt, t), attr(Attr.ALTERNATE_DOMAIN, 'turn2.example.org', t)]), { transport: 'tcp' });
    expect(events(c)).toEqual([{ type: 'redirect', server: alt, domain: 'turn2.example.org' }]);
    expect(transmits(c)).toEqual([]);
    expect(c.state).toBe('redirecting');
    const newLocal = { address: '10.0.0.2', port: 50001 };
    c.redirectConnected(5, newLocal);
    const t = transmits(c);
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({ local: newLocal, remote: alt, transport: 'tcp' });
  });

  it('retries without DONT-FRAGMENT after a 420 listing it', () => {
    const c = makeClient({ dontFragment: true });
    c.allocate(0);
    const first = oneRequest(c);
    expect(hasAttribute(first, TurnAttr.DONT_FRAGMENT)).toBe(true);
    reply(c, 0, first, 'error', errorAttrs(420, 'Unknown Attribute', (t) => [attr(Attr.UNKNOWN_ATTRIBUTES, [TurnAttr.DONT_FRAGMENT.type], t)]));
    const second = oneRequest(c);
    expect(hasAttribute(second, TurnAttr.DONT_FRAGMENT)).toBe(false);
  });

  it('requests address families and reports dual allocations with ADDRESS-ERROR-CODE', () => {
    const v6 = makeClient({ requestedFamily: 'ipv6' });
    v6.allocate(0);
    expect(getAttribute(oneRequest(v6), TurnAttr.REQUESTED_ADDRESS_FAMILY)).toBe('ipv6');

    const dual = makeClient({ additionalFamily: 'ipv6' });
    dual.allocate(0);
    const first = oneRequest(dual);
    expect(getAttribute(first, TurnAttr.ADDITIONAL_ADDRESS_FAMILY)).toBe('ipv6');
    expect(hasAttribute(first, TurnAttr.REQUESTED_ADDRESS_FAMILY)).toBe(false);
    reply(dual, 0, first, 'error', challenge());
    const relayed6 = { address: '2001:db8::1', port: 50000 };
    reply(dual, 0, oneRequest(dual), 'success', allocSuccess(600, [RELAYED, relayed6]), { key: KEY });
    const [ev] = events(dual);
    expect(ev?.type === 'allocated' && ev.relayed).toEqual([RELAYED, relayed6]);

    const half = makeClient({ additionalFamily: 'ipv6' });
    half.allocate(0);
    reply(half, 0, oneRequest(half), 'error', challenge());
    reply(half, 0, oneRequest(half), 'success', (t) => [...allocSuccess(600)(t), attr(TurnAttr.ADDRESS_ERROR_CODE, { family: 'ipv6', code: 440, reason: 'Address Family not Supported' }, t)], { key: KEY });
    const [hev] = events(half);
    expect(hev?.type === 'allocated' && hev.addressErrors).toEqual([{ family: 'ipv6', code: 440, reason: 'Address Family not Supported' }]);
    // No IPv6 relay → sending to an IPv6 peer is API misuse.
    expect(() => half.send(0, { address: '2001:db8::9', port: 1 }, new Uint8Array(1))).toThrow(TurnError);
  });

  it('rejects contradictory options at construction', () => {
    expect(() => makeClient({ requestedFamily: 'ipv4', additionalFamily: 'ipv6' })).toThrow(TurnError);
    expect(() => makeClient({ reservationToken: new Uint8Array(8), evenPort: true })).toThrow(TurnError);
  });

  it('fails with 408 after the RFC 8489 retransmission schedule when the server never answers (UDP: 7 sends, 39.5 s)', () => {
    const c = makeClient();
    c.allocate(0);
    const sent = [{ at: 0, msg: transmits(c)[0]!.data }, ...runUntil(c, 0, 100_000)];
    expect(sent.map((s) => s.at)).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    const e = errorOf(events(c));
    expect(e.error.errorCode).toBe(408);
    expect(e.error.reason).toBe('timeout');
    expect(c.state).toBe('failed');
  });

  it('drops a success with bad integrity (counted), keeps retransmitting, and ends with an integrity error (UDP)', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    const req = oneRequest(c);
    expect(reply(c, 1, req, 'success', allocSuccess(600), { key: longTermKey('user', REALM, 'wrong') })).toBe(true);
    expect(reply(c, 1, req, 'success', allocSuccess(600))).toBe(true); // no integrity at all
    expect(events(c)).toEqual([]);
    expect(c.stats.unauthenticated).toBe(2);
    expect(runUntil(c, 1, 100_000).length).toBe(6);
    const e = errorOf(events(c));
    expect(e.error.reason).toBe('integrity');
  });

  it('on TCP a response with bad integrity ends the transaction at once (RFC 8489 §9.2.5)', () => {
    const c = makeClient({ transport: 'tcp' });
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge(), { transport: 'tcp' });
    const req = oneRequest(c);
    reply(c, 1, req, 'success', allocSuccess(600), { key: longTermKey('user', REALM, 'wrong'), transport: 'tcp' });
    const e = errorOf(events(c));
    expect(e.error.reason).toBe('integrity');
    expect(c.state).toBe('failed');
  });

  it('discards a 400 without integrity as if never received (RFC 8489 §9.2.5), so retransmission goes on', () => {
    const c = makeClient();
    c.allocate(0);
    const first = oneRequest(c);
    expect(reply(c, 1, first, 'error', errorAttrs(400, 'Bad Request'))).toBe(true);
    expect(events(c)).toEqual([]);
    expect(c.stats.unauthenticated).toBe(1);
    c.handleTimeout(500);
    expect(decodeStunMessage(transmits(c)[0]!.data).transactionId).toEqual(first.transactionId);
    // A signed 400 to an authenticated request is acted on.
    reply(c, 600, first, 'error', challenge());
    reply(c, 601, oneRequest(c), 'error', errorAttrs(400, 'Bad Request'), { key: KEY });
    expect(errorOf(events(c)).error.reason).toBe('bad-request');
  });

  it('ignores a response whose nonce cookie announces PASSWORD-ALGORITHMS without the attribute', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    const req = oneRequest(c);
    const cookieNonce = nonceCookie({ passwordAlgorithms: true, usernameAnonymity: false }) + 'z';
    reply(c, 1, req, 'success', (t) => [...allocSuccess(600)(t), attr(Attr.NONCE, cookieNonce, t)], { key: KEY });
    expect(events(c)).toEqual([]);
    expect(c.stats.malformed).toBe(1);
  });

  it('drops a success missing XOR-RELAYED-ADDRESS as malformed', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    reply(c, 0, oneRequest(c), 'success', (t) => [attr(TurnAttr.LIFETIME, 600, t)], { key: KEY });
    expect(events(c)).toEqual([]);
    expect(c.stats.malformed).toBe(1);
  });
});

describe('refresh timers on virtual time', () => {
  it('refreshes the allocation 60 s before LIFETIME runs out, authenticated, and reschedules from the new lifetime', () => {
    const c = makeClient({ lifetimeSec: 600 });
    allocate(c, 1000, 600);
    expect(c.pollTimeout()).toBe(1000 + 540_000);
    c.handleTimeout(1000 + 539_999);
    expect(transmits(c)).toEqual([]);
    c.handleTimeout(1000 + 540_000);
    const r = oneRequest(c);
    expect(r.method).toBe(StunMethod.Refresh);
    expect(getAttribute(r, TurnAttr.LIFETIME)).toBe(600);
    expect(getAttribute(r, Attr.SOFTWARE)).toBe('icewire-test');
    expect(verifyIntegrity(r, KEY, 'sha1')).toBe('ok');
    reply(c, 541_500, r, 'success', (t) => [attr(TurnAttr.LIFETIME, 300, t)], { key: KEY });
    expect(events(c)).toEqual([{ type: 'refreshed', lifetimeSec: 300 }]);
    expect(c.pollTimeout()).toBe(541_500 + 240_000);
  });

  it('uses half the lifetime as lead for short lifetimes', () => {
    const c = makeClient();
    allocate(c, 0, 4);
    expect(c.pollTimeout()).toBe(2000);
  });

  it('retries a refresh that got 438 with the new nonce', () => {
    const c = makeClient();
    allocate(c, 0, 600);
    c.handleTimeout(540_000);
    const r = oneRequest(c);
    reply(c, 540_010, r, 'error', challenge(438, 'nonce-2'));
    const r2 = oneRequest(c);
    expect(getAttribute(r2, Attr.NONCE)).toBe('nonce-2');
    reply(c, 540_020, r2, 'success', (t) => [attr(TurnAttr.LIFETIME, 600, t)], { key: KEY });
    expect(events(c).map((e) => e.type)).toEqual(['refreshed']);
  });

  it('a 437 to a refresh means the allocation is gone (fatal)', () => {
    const c = makeClient();
    allocate(c, 0, 600);
    c.handleTimeout(540_000);
    reply(c, 540_010, oneRequest(c), 'error', errorAttrs(437, 'Allocation Mismatch'), { key: KEY });
    const e = errorOf(events(c));
    expect(e.error.reason).toBe('allocation-mismatch');
    expect(e.fatal).toBe(true);
    expect(c.state).toBe('failed');
  });

  it('keeps retrying timed-out refreshes and fails when the allocation expires', () => {
    const c = makeClient();
    allocate(c, 0, 600);
    const sent = runUntil(c, 0, 700_000);
    const refreshes = sent.filter((s) => decodeStunMessage(s.msg).method === StunMethod.Refresh);
    expect(refreshes[0]!.at).toBe(540_000);
    expect(refreshes.every((s) => s.at < 600_000)).toBe(true);
    const ev = events(c).filter((e) => e.type === 'error') as Extract<TurnClientEvent, { type: 'error' }>[];
    expect(ev.some((e) => !e.fatal && e.error.reason === 'timeout')).toBe(true);
    expect(ev.at(-1)!.fatal).toBe(true);
    expect(ev.at(-1)!.error.reason).toBe('allocation-expired');
    expect(c.state).toBe('failed');
  });

  it('queues data until CreatePermission succeeds, flushes it in order, then refreshes the permission every 240 s', () => {
    const c = makeClient({ autoBindChannel: false });
    allocate(c, 0, 3600);
    c.send(10, PEER, Uint8Array.of(1));
    c.send(11, PEER, Uint8Array.of(2));
    const perm = oneRequest(c); // only the CreatePermission: the data waits
    expect(perm.method).toBe(StunMethod.CreatePermission);
    expect(getAttribute(perm, TurnAttr.XOR_PEER_ADDRESS)?.address).toBe(PEER.address);
    expect(verifyIntegrity(perm, KEY, 'sha1')).toBe('ok');
    reply(c, 20, perm, 'success', () => [], { key: KEY });
    expect(events(c)).toEqual([{ type: 'permission', peerIp: PEER.address, refreshed: false }]);
    const sent = transmits(c).map((d) => decodeStunMessage(d.data));
    expect(sent.map((m) => [m.method, m.cls, getAttribute(m, TurnAttr.DATA)?.[0]])).toEqual([
      [StunMethod.Send, 'indication', 1],
      [StunMethod.Send, 'indication', 2],
    ]);
    expect(getAttribute(sent[0]!, TurnAttr.XOR_PEER_ADDRESS)).toEqual(PEER);
    expect(c.hasPermission(PEER.address)).toBe(true);
    // Refresh: 300 s lifetime, 60 s lead.
    expect(c.pollTimeout()).toBe(20 + 240_000);
    c.handleTimeout(20 + 240_000);
    const again = oneRequest(c);
    expect(again.method).toBe(StunMethod.CreatePermission);
    reply(c, 240_100, again, 'success', () => [], { key: KEY });
    expect(events(c)).toEqual([{ type: 'permission', peerIp: PEER.address, refreshed: true }]);
    expect(c.pollTimeout()).toBe(240_100 + 240_000);
  });

  it('binds a channel on first send, switches to ChannelData after success, refreshes the channel every 540 s', () => {
    const c = makeClient();
    allocate(c, 0, 3600);
    c.send(0, PEER, Uint8Array.of(9));
    const perm = oneRequest(c);
    reply(c, 5, perm, 'success', () => [], { key: KEY });
    events(c);
    const out = transmits(c).map((d) => decodeStunMessage(d.data));
    expect(out.map((m) => m.method)).toEqual([StunMethod.Send, StunMethod.ChannelBind]);
    const bind = out[1]!;
    const number = getAttribute(bind, TurnAttr.CHANNEL_NUMBER)!;
    expect(number).toBe(0x4000);
    expect(getAttribute(bind, TurnAttr.XOR_PEER_ADDRESS)).toEqual(PEER);
    // Before the bind succeeds, data still goes in Send indications.
    c.send(6, PEER, Uint8Array.of(10));
    expect(decodeStunMessage(transmits(c)[0]!.data).method).toBe(StunMethod.Send);
    reply(c, 7, bind, 'success', () => [], { key: KEY });
    expect(events(c)).toEqual([{ type: 'channel', peer: PEER, channel: 0x4000, refreshed: false }]);
    c.send(8, PEER, Uint8Array.of(1, 2, 3));
    const cd = transmits(c)[0]!.data;
    expect(cd.length).toBe(7); // UDP: no padding
    expect(decodeChannelData(cd)).toEqual({ channel: 0x4000, data: Uint8Array.of(1, 2, 3) });
    expect(c.channelFor(PEER)).toBe(0x4000);
    // Channel refresh at 7 + 540 s; the permission (refreshed by the bind at 7 ms) at 7 + 240 s.
    const sent = runUntil(c, 8, 7 + 540_000).map((s) => ({ at: s.at, m: decodeStunMessage(s.msg) }));
    const binds = sent.filter((s) => s.m.method === StunMethod.ChannelBind);
    expect(binds.map((s) => s.at)).toEqual([7 + 540_000]);
    expect(getAttribute(binds[0]!.m, TurnAttr.CHANNEL_NUMBER)).toBe(0x4000);
    const perms = sent.filter((s) => s.m.method === StunMethod.CreatePermission);
    expect(perms[0]!.at).toBe(7 + 240_000);
  });

  it('a failed ChannelBind falls back to Send indications and is not retried automatically on every send', () => {
    const c = makeClient();
    allocate(c, 0, 3600);
    c.createPermission(0, PEER.address);
    reply(c, 1, oneRequest(c), 'success', () => [], { key: KEY });
    events(c);
    c.send(2, PEER, Uint8Array.of(1));
    const [ind, bind] = transmits(c).map((d) => decodeStunMessage(d.data));
    expect([ind!.method, bind!.method]).toEqual([StunMethod.Send, StunMethod.ChannelBind]);
    reply(c, 3, bind!, 'error', errorAttrs(400, 'Bad Request'), { key: KEY });
    const e = errorOf(events(c));
    expect(e.operation).toBe('channel');
    expect(e.fatal).toBe(false);
    c.send(4, PEER, Uint8Array.of(2));
    expect(transmits(c).map((d) => decodeStunMessage(d.data).method)).toEqual([StunMethod.Send]);
    expect(c.channelFor(PEER)).toBeUndefined();
    // An explicit bind keeps the peer's number (RFC 8656 §12: an address is never bound to a second number).
    expect(c.bindChannel(5, PEER)).toBe(0x4000);
  });

  it('pads ChannelData to 4 bytes on TCP (RFC 8656 §12.5)', () => {
    const c = makeClient({ transport: 'tcp' });
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge(), { transport: 'tcp' });
    reply(c, 0, oneRequest(c), 'success', allocSuccess(600), { key: KEY, transport: 'tcp' });
    events(c);
    const n = c.bindChannel(0, PEER);
    reply(c, 1, oneRequest(c), 'success', () => [], { key: KEY, transport: 'tcp' });
    events(c);
    c.send(2, PEER, Uint8Array.of(1, 2, 3, 4, 5));
    const d = transmits(c)[0]!;
    expect(d.transport).toBe('tcp');
    expect(d.data.length).toBe(12);
    expect(decodeChannelData(d.data)).toEqual({ channel: n, data: Uint8Array.of(1, 2, 3, 4, 5) });
  });

  it('a failed CreatePermission (403) drops the queued data, is reported non-fatally, and later sends are dropped', () => {
    const c = makeClient();
    allocate(c, 0, 3600);
    c.send(0, PEER, Uint8Array.of(1));
    c.send(0, PEER, Uint8Array.of(2));
    reply(c, 1, oneRequest(c), 'error', errorAttrs(403, 'Forbidden'), { key: KEY });
    const e = errorOf(events(c));
    expect(e.error.errorCode).toBe(403);
    expect(e.error.reason).toBe('forbidden');
    expect(e.fatal).toBe(false);
    expect(e.peer?.address).toBe(PEER.address);
    expect(c.stats.noPermission).toBe(2);
    c.send(2, PEER, Uint8Array.of(3));
    expect(transmits(c)).toEqual([]);
    expect(c.state).toBe('allocated');
  });

  it('bounds the pending queue per peer', () => {
    const c = makeClient({ maxQueuedPerPeer: 2 });
    allocate(c, 0, 3600);
    for (let i = 0; i < 5; i++) c.send(0, PEER, Uint8Array.of(i));
    const perm = oneRequest(c);
    expect(c.stats.queueOverflow).toBe(3);
    reply(c, 1, perm, 'success', () => [], { key: KEY });
    const data = transmits(c)
      .map((d) => decodeStunMessage(d.data))
      .filter((m) => m.method === StunMethod.Send)
      .map((m) => getAttribute(m, TurnAttr.DATA)![0]);
    expect(data).toEqual([3, 4]);
  });
});

describe('receiving', () => {
  function ready(): TurnClient {
    const c = makeClient({ autoBindChannel: false });
    allocate(c, 0, 3600);
    c.createPermission(0, PEER.address);
    reply(c, 1, oneRequest(c), 'success', () => [], { key: KEY });
    events(c);
    return c;
  }

  function dataIndication(peer: TransportAddress, payload: Uint8Array): Uint8Array {
    const txid = new Uint8Array(12).fill(3);
    return encodeStunMessage({ method: StunMethod.Data, cls: 'indication', transactionId: txid, attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, peer, txid), attr(TurnAttr.DATA, payload, txid)] });
  }

  it('delivers Data indications from permitted peers and drops others (RFC 8656 §11.4)', () => {
    const c = ready();
    expect(c.handleReceive(2, datagramFromServer(dataIndication(PEER, Uint8Array.of(7, 7))))).toBe(true);
    expect(events(c)).toEqual([{ type: 'data', peer: PEER, data: Uint8Array.of(7, 7), channel: undefined }]);
    expect(c.handleReceive(2, datagramFromServer(dataIndication(PEER2, Uint8Array.of(1))))).toBe(true);
    expect(events(c)).toEqual([]);
    expect(c.stats.noPermission).toBe(1);
  });

  it('reports ICMP in a Data indication', () => {
    const c = ready();
    const txid = new Uint8Array(12).fill(4);
    const m = encodeStunMessage({ method: StunMethod.Data, cls: 'indication', transactionId: txid, attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, PEER, txid), attr(TurnAttr.ICMP, { type: 3, code: 3, errorData: 0 }, txid)] });
    c.handleReceive(2, datagramFromServer(m));
    expect(events(c)).toEqual([{ type: 'icmp', peer: PEER, icmp: { type: 3, code: 3, errorData: 0 } }]);
  });

  it('accepts ChannelData on a channel as soon as the bind is sent, and drops unknown channels', () => {
    const c = ready();
    const n = c.bindChannel(3, PEER);
    transmits(c);
    expect(c.handleReceive(4, datagramFromServer(encodeChannelData(n, Uint8Array.of(5))))).toBe(true);
    expect(events(c)).toEqual([{ type: 'data', peer: PEER, data: Uint8Array.of(5), channel: n }]);
    expect(c.handleReceive(4, datagramFromServer(encodeChannelData(0x4abc, Uint8Array.of(5))))).toBe(true);
    expect(c.stats.unknownChannel).toBe(1);
    // Claimed length longer than the datagram: malformed (RFC 8656 §12.6).
    const bad = encodeChannelData(n, Uint8Array.of(1, 2, 3)).subarray(0, 5);
    expect(c.handleReceive(4, datagramFromServer(bad))).toBe(true);
    expect(c.stats.malformed).toBe(1);
    expect(events(c)).toEqual([]);
  });

  it('leaves foreign traffic alone: other remotes, other transports, unknown transactions, requests', () => {
    const c = ready();
    const ind = dataIndication(PEER, Uint8Array.of(1));
    expect(c.handleReceive(5, datagramFromServer(ind, { from: { address: '192.0.2.1', port: 3479 } }))).toBe(false);
    expect(c.handleReceive(5, datagramFromServer(ind, { transport: 'tcp' }))).toBe(false);
    expect(c.handleReceive(5, { local: { ...LOCAL, port: 1 }, remote: SERVER, data: ind })).toBe(false);
    const txid = new Uint8Array(12).fill(9);
    const bindingResponse = encodeStunMessage({ method: StunMethod.Binding, cls: 'success', transactionId: txid, attributes: [attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, txid)] });
    expect(c.handleReceive(5, datagramFromServer(bindingResponse))).toBe(false);
    expect(c.handleReceive(5, datagramFromServer(Uint8Array.of(0x80, 1, 2, 3)))).toBe(false);
    expect(events(c)).toEqual([]);
  });

  it('never throws on garbage from the server', () => {
    const c = ready();
    for (let i = 0; i < 500; i++) {
      const len = (i * 7) % 64;
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = (i * 31 + j * 17) & 0xff;
      if (len > 8) {
        b[4] = 0x21;
        b[5] = 0x12;
        b[6] = 0xa4;
        b[7] = 0x42;
        b[0] = b[0]! & 0x3f;
      }
      expect(() => c.handleReceive(6, datagramFromServer(b))).not.toThrow();
    }
    events(c);
    expect(c.state).toBe('allocated');
  });
});

describe('close', () => {
  it('deletes the allocation with Refresh LIFETIME 0 and emits closed on success', () => {
    const c = makeClient();
    allocate(c, 0, 600);
    c.close(100);
    const r = oneRequest(c);
    expect(r.method).toBe(StunMethod.Refresh);
    expect(getAttribute(r, TurnAttr.LIFETIME)).toBe(0);
    expect(verifyIntegrity(r, KEY, 'sha1')).toBe('ok');
    expect(c.state).toBe('closing');
    reply(c, 110, r, 'success', (t) => [attr(TurnAttr.LIFETIME, 0, t)], { key: KEY });
    expect(events(c)).toEqual([{ type: 'closed' }]);
    expect(c.state).toBe('closed');
    expect(c.pollTimeout()).toBeUndefined();
    expect(() => c.send(120, PEER, Uint8Array.of(1))).toThrow();
  });

  it('treats 437 to the delete as success (RFC 8656 §8.3)', () => {
    const c = makeClient();
    allocate(c, 0, 600);
    c.close(100);
    reply(c, 110, oneRequest(c), 'error', errorAttrs(437, 'Allocation Mismatch'), { key: KEY });
    expect(events(c)).toEqual([{ type: 'closed' }]);
  });

  it('closes at once when nothing is allocated', () => {
    const c = makeClient();
    c.close(0);
    expect(transmits(c)).toEqual([]);
    expect(events(c)).toEqual([{ type: 'closed' }]);
  });

  it('a lost TCP connection is a fatal error', () => {
    const c = makeClient({ transport: 'tcp' });
    c.allocate(0);
    transmits(c);
    c.connectionClosed(1);
    const e = errorOf(events(c));
    expect(e.error.reason).toBe('connection-closed');
    expect(c.state).toBe('failed');
  });
});
