/**
 * RFC conformance checks found in review (RFC 8656 §12, RFC 8489 §6.3): each test pins one rule the client used to
 * break. Virtual time, scripted server responses.
 */
import { describe, expect, it } from 'vitest';
import {
  Attr,
  attr,
  decodeStunMessage,
  encodeStunMessage,
  getAttribute,
  StunMethod,
  type DecodedStunMessage,
  type StunAttribute,
} from '../../src/stun/index.js';
import { encodeChannelData, TurnAttr, type TurnClient, type TurnClientEvent } from '../../src/turnclient/index.js';
import type { TransportAddress } from '../../src/types.js';
import {
  challenge,
  datagramFromServer,
  errorAttrs,
  events,
  KEY,
  makeClient,
  MAPPED,
  oneRequest,
  RELAYED,
  reply,
  transmits,
} from './scripted.js';

const PEER: TransportAddress = { address: '203.0.113.5', port: 6000 };

function allocSuccess(lifetime: number, extra: (txid: Uint8Array) => StunAttribute[] = () => []) {
  return (txid: Uint8Array) => [
    attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, txid),
    attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, txid),
    attr(TurnAttr.LIFETIME, lifetime, txid),
    ...extra(txid),
  ];
}

function allocate(c: TurnClient, lifetime = 3600): void {
  c.allocate(0);
  reply(c, 0, oneRequest(c), 'error', challenge());
  reply(c, 0, oneRequest(c), 'success', allocSuccess(lifetime), { key: KEY });
  expect(events(c).map((e) => e.type)).toEqual(['allocated']);
}

function errors(ev: TurnClientEvent[]): Extract<TurnClientEvent, { type: 'error' }>[] {
  return ev.filter((e): e is Extract<TurnClientEvent, { type: 'error' }> => e.type === 'error');
}

function decodedTransmits(c: TurnClient): DecodedStunMessage[] {
  return transmits(c).map((d) => decodeStunMessage(d.data));
}

/** A channel bound to PEER at t=0 whose refresh (at 540 s) is answered 508; CreatePermission refreshes succeed. */
function channelWithFailedRefresh(): { c: TurnClient; failedAt: number } {
  const c = makeClient({ autoBindChannel: false });
  allocate(c);
  expect(c.bindChannel(0, PEER)).toBe(0x4000);
  reply(c, 1, oneRequest(c), 'success', () => [], { key: KEY });
  events(c);
  for (let guard = 0; guard < 20; guard++) {
    const t = c.pollTimeout()!;
    c.handleTimeout(t);
    for (const m of decodedTransmits(c)) {
      if (m.method === StunMethod.CreatePermission) {
        reply(c, t, m, 'success', () => [], { key: KEY });
      } else if (m.method === StunMethod.ChannelBind) {
        expect(getAttribute(m, TurnAttr.CHANNEL_NUMBER)).toBe(0x4000);
        reply(c, t, m, 'error', errorAttrs(508, 'Insufficient Capacity'), { key: KEY });
        const e = errors(events(c));
        expect(e.map((x) => [x.operation, x.fatal])).toEqual([['channel', false]]);
        return { c, failedAt: t };
      }
    }
    events(c);
  }
  throw new Error('no channel refresh seen');
}

describe('RFC 8656 §12: a transport address is never bound to a second channel number', () => {
  it('after a channel refresh fails, binding the same peer again reuses its number (the old binding is still live)', () => {
    const { c, failedAt } = channelWithFailedRefresh();
    // RFC 8656 §12: the client MUST wait 5 minutes after the binding expires before binding the transport address to
    // a different channel number; the server would answer 400 (§12.2), which §12.3 treats as out of sync.
    expect(c.bindChannel(failedAt + 1000, PEER)).toBe(0x4000);
    const [bind] = decodedTransmits(c);
    expect(bind!.method).toBe(StunMethod.ChannelBind);
    expect(getAttribute(bind!, TurnAttr.CHANNEL_NUMBER)).toBe(0x4000);
    reply(c, failedAt + 1100, bind!, 'success', () => [], { key: KEY });
    expect(c.channelFor(PEER)).toBe(0x4000);
  });

  it('after a ChannelBind times out (the server may have bound it), a new bind for the peer uses the same number', () => {
    const c = makeClient({ autoBindChannel: false });
    allocate(c);
    expect(c.bindChannel(0, PEER)).toBe(0x4000);
    transmits(c);
    for (let t = c.pollTimeout(); t !== undefined && t < 60_000; t = c.pollTimeout()) {
      c.handleTimeout(t);
      transmits(c);
    }
    const e = errors(events(c));
    expect(e.map((x) => [x.operation, x.error.reason])).toEqual([['channel', 'timeout']]);
    expect(c.bindChannel(60_000, PEER)).toBe(0x4000);
    const [bind] = decodedTransmits(c);
    expect(getAttribute(bind!, TurnAttr.CHANNEL_NUMBER)).toBe(0x4000);
  });
});

describe('RFC 8656 §12.5/§12.6: ChannelData on a binding that is still live is delivered', () => {
  it('after a failed channel refresh, ChannelData from the server is delivered until the binding expires, then dropped', () => {
    const { c, failedAt } = channelWithFailedRefresh();
    // Bound at t=1 ms for 600 s: the server still holds the binding (and MUST use ChannelData for this peer, §12.5).
    const expiresAt = 1 + 600_000;
    expect(failedAt).toBeLessThan(expiresAt);
    const frame = encodeChannelData(0x4000, Uint8Array.of(9, 8, 7));
    expect(c.handleReceive(failedAt + 10, datagramFromServer(frame))).toBe(true);
    const data = events(c).filter((e) => e.type === 'data');
    expect(data).toHaveLength(1);
    expect(data[0]).toMatchObject({ peer: PEER, channel: 0x4000 });
    // Sending no longer uses the channel (its refresh failed): Send indications, the permission being installed.
    c.send(failedAt + 20, PEER, Uint8Array.of(1));
    expect(decodedTransmits(c).map((m) => m.method)).toEqual([StunMethod.Send]);
    const before = c.stats.unknownChannel;
    c.handleReceive(expiresAt + 1, datagramFromServer(frame));
    expect(events(c).filter((e) => e.type === 'data')).toHaveLength(0);
    expect(c.stats.unknownChannel).toBe(before + 1);
  });
});

describe('RFC 8656 §12.6: ChannelData on a channel whose bind failed needs an active permission', () => {
  it('is dropped once the permission towards the peer has failed, even before the binding would expire', () => {
    const { c, failedAt } = channelWithFailedRefresh();
    c.createPermission(failedAt + 1, PEER.address);
    reply(c, failedAt + 2, oneRequest(c), 'error', errorAttrs(403, 'Forbidden'), { key: KEY });
    expect(errors(events(c)).map((e) => e.operation)).toEqual(['permission']);
    expect(c.hasPermission(PEER.address)).toBe(false);
    c.handleReceive(failedAt + 10, datagramFromServer(encodeChannelData(0x4000, Uint8Array.of(1))));
    expect(events(c)).toEqual([]);
  });
});

describe('RFC 8489 §6.3.3/§6.3.4: unknown comprehension-required attributes in a response fail the transaction', () => {
  const unknownRequired = (): StunAttribute[] => [{ type: 0x7ff0, value: Uint8Array.of(1, 2, 3, 4) }];
  const unknownOptional = (): StunAttribute[] => [{ type: 0xc0f0, value: Uint8Array.of(1, 2, 3, 4) }];

  it('an Allocate success carrying one is discarded and the allocation fails', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    reply(c, 0, oneRequest(c), 'success', allocSuccess(600, unknownRequired), { key: KEY });
    const ev = events(c);
    expect(ev.some((e) => e.type === 'allocated')).toBe(false);
    expect(errors(ev).map((e) => [e.operation, e.fatal, e.error.reason])).toEqual([['allocate', true, 'unknown-attribute']]);
    expect(c.state).toBe('failed');
    expect(transmits(c)).toHaveLength(0);
  });

  it('a 401 carrying one is not retried', () => {
    const c = makeClient();
    c.allocate(0);
    const first = oneRequest(c);
    reply(c, 0, first, 'error', (txid) => [...challenge()(txid), ...unknownRequired()]);
    expect(transmits(c)).toHaveLength(0);
    expect(errors(events(c)).map((e) => e.operation)).toEqual(['allocate']);
    expect(c.state).toBe('failed');
  });

  it('an unknown comprehension-optional attribute is ignored (control)', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    reply(c, 0, oneRequest(c), 'success', allocSuccess(600, unknownOptional), { key: KEY });
    expect(events(c).map((e) => e.type)).toEqual(['allocated']);
  });
});

describe('RFC 8489 §6.3: a response must answer the request it claims to', () => {
  it('a response with our transaction ID but another method is dropped, and the transaction goes on', () => {
    const c = makeClient({ autoBindChannel: false });
    allocate(c);
    c.createPermission(0, PEER.address);
    const req = oneRequest(c);
    expect(req.method).toBe(StunMethod.CreatePermission);
    const wrong = encodeStunMessage(
      { method: StunMethod.Refresh, cls: 'success', transactionId: req.transactionId, attributes: [attr(TurnAttr.LIFETIME, 600, req.transactionId)] },
      { integrityKey: KEY, fingerprint: true },
    );
    c.handleReceive(1, datagramFromServer(wrong));
    expect(events(c)).toEqual([]);
    expect(c.hasPermission(PEER.address)).toBe(false);
    expect(c.stats.malformed).toBe(1);
    reply(c, 2, req, 'success', () => [], { key: KEY });
    expect(events(c).map((e) => e.type)).toEqual(['permission']);
    expect(c.hasPermission(PEER.address)).toBe(true);
  });
});

describe('RFC 8656 §7.3: an Allocate success with an address the client cannot handle', () => {
  // XOR-RELAYED-ADDRESS / XOR-MAPPED-ADDRESS with family 0x03 (neither IPv4 nor IPv6).
  const badFamily = (type: number): StunAttribute => ({ type, value: Uint8Array.of(0, 0x03, 0x12, 0x34, 1, 2, 3, 4) });

  function allocateWith(attrs: (txid: Uint8Array) => StunAttribute[]): { c: TurnClient; ev: TurnClientEvent[] } {
    const c = makeClient();
    c.allocate(0);
    reply(c, 0, oneRequest(c), 'error', challenge());
    reply(c, 10, oneRequest(c), 'success', attrs, { key: KEY });
    return { c, ev: events(c) };
  }

  function expectDeleted(c: TurnClient, ev: TurnClientEvent[]): void {
    expect(ev.some((e) => e.type === 'allocated')).toBe(false);
    expect(errors(ev).map((e) => [e.operation, e.fatal])).toEqual([['allocate', true]]);
    expect(c.state).toBe('failed');
    // "the client MUST delete the allocation (Section 8)": an authenticated Refresh with LIFETIME 0.
    const del = oneRequest(c);
    expect(del.method).toBe(StunMethod.Refresh);
    expect(getAttribute(del, TurnAttr.LIFETIME)).toBe(0);
    expect(del.integrityOffset).toBeGreaterThanOrEqual(0);
    expect(reply(c, 20, del, 'success', () => [], { key: KEY })).toBe(true);
    expect(events(c)).toEqual([]);
    expect(c.state).toBe('failed');
    expect(c.pollTimeout()).toBeUndefined();
  }

  it('a relayed address of an unknown family: the allocation is deleted, not left to time out', () => {
    const { c, ev } = allocateWith((txid) => [badFamily(TurnAttr.XOR_RELAYED_ADDRESS.type), attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, txid), attr(TurnAttr.LIFETIME, 600, txid)]);
    expectDeleted(c, ev);
  });

  it('a mapped address of an unknown family: the allocation is deleted', () => {
    const { c, ev } = allocateWith((txid) => [attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, txid), badFamily(Attr.XOR_MAPPED_ADDRESS.type), attr(TurnAttr.LIFETIME, 600, txid)]);
    expectDeleted(c, ev);
  });

  it('the delete is retransmitted and its time-out stays quiet (the failure was already reported)', () => {
    const { c } = allocateWith((txid) => [badFamily(TurnAttr.XOR_RELAYED_ADDRESS.type), attr(TurnAttr.LIFETIME, 600, txid)]);
    let sends = transmits(c).length;
    for (let t = c.pollTimeout(); t !== undefined; t = c.pollTimeout()) {
      c.handleTimeout(t);
      sends += transmits(c).length;
    }
    expect(sends).toBe(7);
    expect(events(c).filter((e) => e.type !== 'error' || e.operation !== 'allocate')).toEqual([]);
    expect(c.state).toBe('failed');
  });
});

describe('RFC 8489 §6.3.2: a Data indication with an unknown comprehension-required attribute is discarded', () => {
  function withPermission(): TurnClient {
    const c = makeClient({ autoBindChannel: false });
    allocate(c);
    c.createPermission(0, PEER.address);
    reply(c, 1, oneRequest(c), 'success', () => [], { key: KEY });
    events(c);
    return c;
  }
  function dataIndication(extra: StunAttribute[]): Uint8Array {
    const txid = new Uint8Array(12).fill(7);
    return encodeStunMessage({
      method: StunMethod.Data,
      cls: 'indication',
      transactionId: txid,
      attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, PEER, txid), attr(TurnAttr.DATA, Uint8Array.of(5), txid), ...extra],
    });
  }

  it('drops it (counted malformed) and still delivers one with an unknown comprehension-optional attribute', () => {
    const c = withPermission();
    expect(c.handleReceive(2, datagramFromServer(dataIndication([{ type: 0x7ff1, value: new Uint8Array(4) }])))).toBe(true);
    expect(events(c)).toEqual([]);
    expect(c.stats.malformed).toBe(1);
    c.handleReceive(3, datagramFromServer(dataIndication([{ type: 0xc0f1, value: new Uint8Array(4) }])));
    expect(events(c).map((e) => e.type)).toEqual(['data']);
  });
});

describe('RFC 8656 §11.1/§12: nothing is sent on a permission or channel that has expired', () => {
  // A slow retransmission schedule (RTO 2 s: a transaction times out after 158 s) keeps a refresh in flight past the
  // expiry it was meant to prevent.
  const slow = { timing: { rtoMs: 2000 } } as const;

  it('a Send indication waits once the permission expired with its refresh unanswered, and goes out when it succeeds', () => {
    const c = makeClient({ ...slow, autoBindChannel: false });
    allocate(c);
    c.createPermission(0, PEER.address);
    reply(c, 0, oneRequest(c), 'success', () => [], { key: KEY });
    events(c);
    c.handleTimeout(240_000);
    const refresh = decodedTransmits(c);
    expect(refresh.map((m) => m.method)).toEqual([StunMethod.CreatePermission]);
    c.send(299_000, PEER, Uint8Array.of(1));
    expect(decodedTransmits(c).map((m) => m.method)).toEqual([StunMethod.Send]);
    // Past 300 s the server has dropped the permission: the client MUST NOT rely on it (§11.1).
    c.send(301_000, PEER, Uint8Array.of(2));
    expect(decodedTransmits(c).filter((m) => m.method === StunMethod.Send)).toHaveLength(0);
    expect(c.hasPermission(PEER.address)).toBe(false);
    reply(c, 302_000, refresh[0]!, 'success', () => [], { key: KEY });
    const sent = decodedTransmits(c);
    expect(sent.map((m) => m.method)).toEqual([StunMethod.Send]);
    expect([...getAttribute(sent[0]!, TurnAttr.DATA)!]).toEqual([2]);
  });

  it('ChannelData stops once the binding expired with its refresh unanswered', () => {
    const c = makeClient({ ...slow, autoBindChannel: false });
    allocate(c);
    c.bindChannel(0, PEER);
    reply(c, 0, oneRequest(c), 'success', () => [], { key: KEY });
    events(c);
    // Permission refreshes (CreatePermission) are answered; the channel refresh at 540 s is not.
    let channelRefresh: DecodedStunMessage | undefined;
    const runTo = (until: number): void => {
      for (let t = c.pollTimeout()!, guard = 0; t <= until && guard < 1000; t = c.pollTimeout()!, guard++) {
        c.handleTimeout(t);
        for (const m of decodedTransmits(c)) {
          if (m.method === StunMethod.CreatePermission) reply(c, t, m, 'success', () => [], { key: KEY });
          else if (m.method === StunMethod.ChannelBind) channelRefresh ??= m;
        }
        events(c);
      }
    };
    runTo(599_000);
    expect(channelRefresh).toBeDefined();
    c.send(599_000, PEER, Uint8Array.of(1));
    expect(transmits(c).map((d) => d.data[0]! >> 6)).toEqual([1]); // ChannelData (0x40-0x4F)
    runTo(601_000);
    c.send(601_000, PEER, Uint8Array.of(2));
    const after = transmits(c);
    expect(after).toHaveLength(1);
    expect(decodeStunMessage(after[0]!.data).method).toBe(StunMethod.Send);
    expect(c.channelFor(PEER)).toBeUndefined();
    // The late refresh success binds it again.
    reply(c, 602_000, channelRefresh!, 'success', () => [], { key: KEY });
    expect(c.channelFor(PEER)).toBe(0x4000);
  });
});
