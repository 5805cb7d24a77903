/**
 * close() while an Allocate is in flight (issue 16, item 1): the server may already have created the allocation, so
 * the client waits for the answer and deletes what it created, instead of dropping the transaction and leaving an
 * allocation on the server for its whole lifetime.
 */
import { describe, expect, it } from 'vitest';
import { Attr, attr, StunMethod } from '../../src/stun/index.js';
import { TurnAttr } from '../../src/turnclient/index.js';
import { challenge, events, KEY, makeClient, MAPPED, oneRequest, RELAYED, reply, transmits } from './scripted.js';

const granted = (id: Uint8Array) => [attr(TurnAttr.XOR_RELAYED_ADDRESS, RELAYED, id), attr(Attr.XOR_MAPPED_ADDRESS, MAPPED, id), attr(TurnAttr.LIFETIME, 600, id)];

describe('TurnClient.close() with an Allocate in flight', () => {
  it('deletes the allocation the authenticated Allocate created, then reports closed', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 10, oneRequest(c), 'error', challenge());
    const auth = oneRequest(c); // the authenticated Allocate is on its way
    c.close(20);
    expect(c.state).toBe('closing');
    expect(transmits(c)).toEqual([]); // nothing yet: waiting for the answer
    reply(c, 60, auth, 'success', granted, { key: KEY });
    const del = oneRequest(c);
    expect(del.method).toBe(StunMethod.Refresh);
    expect(del.attributes.find((a) => a.type === TurnAttr.LIFETIME.type)).toBeDefined();
    reply(c, 100, del, 'success', (id) => [attr(TurnAttr.LIFETIME, 0, id)], { key: KEY });
    expect(c.state).toBe('closed');
    const ev = events(c).map((e) => e.type);
    expect(ev).not.toContain('allocated');
    expect(ev).toContain('closed');
  });

  it('a challenge to an Allocate in flight is not answered: no allocation exists, closed at once', () => {
    const c = makeClient();
    c.allocate(0);
    const first = oneRequest(c);
    c.close(5);
    reply(c, 10, first, 'error', challenge());
    expect(transmits(c)).toEqual([]); // no authenticated Allocate after close()
    expect(c.state).toBe('closed');
  });

  it('an Allocate in flight that is never answered ends in closed at its time-out', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 10, oneRequest(c), 'error', challenge());
    transmits(c);
    c.close(20);
    for (let t = c.pollTimeout(); t !== undefined && t < 60_000; t = c.pollTimeout()) {
      c.handleTimeout(t);
      transmits(c); // retransmissions of the Allocate, then nothing
    }
    expect(c.state).toBe('closed');
  });

  it('a stale nonce on the deleting Refresh is answered with the new nonce', () => {
    const c = makeClient();
    c.allocate(0);
    reply(c, 10, oneRequest(c), 'error', challenge());
    reply(c, 20, oneRequest(c), 'success', granted, { key: KEY });
    c.close(30);
    reply(c, 40, oneRequest(c), 'error', challenge(438, 'nonce-2'), { key: KEY });
    const again = oneRequest(c);
    expect(again.method).toBe(StunMethod.Refresh);
    reply(c, 50, again, 'success', (id) => [attr(TurnAttr.LIFETIME, 0, id)], { key: KEY });
    expect(c.state).toBe('closed');
  });
});
