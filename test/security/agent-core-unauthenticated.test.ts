import { describe, expect, it } from 'vitest';
import { AgentCore } from '../../src/checklist/agent-core.js';
import { encodeCheckRequest, encodeCheckSuccess } from '../../src/checklist/checks.js';
import { Attr, attr } from '../../src/stun/attributes.js';
import { StunMethod } from '../../src/stun/constants.js';
import { shortTermKey } from '../../src/stun/integrity.js';
import { encodeStunMessage, tryDecodeStunMessage } from '../../src/stun/message.js';
import type { AgentEvent } from '../../src/checklist/types.js';
import type { Datagram, TransportAddress } from '../../src/types.js';
import { host, seededRandom, signalled } from '../checklist/harness.js';

const BASE = { address: '10.0.0.1', port: 5000 };
const PEER_PWD = 'p'.repeat(22);

function agent(role: 'controlling' | 'controlled' = 'controlling', withRemote = true): AgentCore {
  const a = new AgentCore({ random: seededRandom(7), role, tieBreaker: 1000n });
  a.addStream(1);
  a.addLocalCandidate(0, host(BASE.address, BASE.port));
  if (withRemote) {
    a.setRemoteParameters(0, { ufrag: 'peer', pwd: PEER_PWD });
    a.addRemoteCandidate(0, signalled(host('10.0.0.2', 6000)));
  }
  return a;
}

function drain(a: AgentCore): { sent: Datagram[]; events: AgentEvent[] } {
  const sent: Datagram[] = [];
  const events: AgentEvent[] = [];
  for (let d = a.pollTransmit(); d; d = a.pollTransmit()) sent.push(d);
  for (let e = a.pollEvent(); e; e = a.pollEvent()) events.push(e);
  return { sent, events };
}

function txid(i: number): Uint8Array {
  const id = new Uint8Array(12);
  new DataView(id.buffer).setUint32(8, i);
  return id;
}

function from(i: number): TransportAddress {
  return { address: `192.0.2.${(i % 250) + 1}`, port: 1024 + (i % 60000) };
}

describe('unauthenticated checks change nothing', () => {
  it('bad integrity, unknown ufrag, or no integrity: no prflx, no pair, no role change, no nomination', () => {
    for (const role of ['controlling', 'controlled'] as const) {
      const a = agent(role);
      a.handleTimeout(0);
      drain(a);
      const pairsBefore = a.getChecklist(0).pairs.length;
      const lfrag = a.getLocalParameters().ufrag;
      for (let i = 0; i < 300; i++) {
        const variant = i % 3;
        const request = encodeCheckRequest({
          transactionId: txid(i),
          username: variant === 1 ? `nope:peer` : `${lfrag}:peer`,
          priority: 0x7effffff,
          // Claims the same role with the highest tie-breaker: would flip our role if it were believed.
          role,
          tieBreaker: 0xffffffffffffffffn,
          useCandidate: true,
          key: shortTermKey('wrong-password-wrong-password'),
        });
        // Variant 2 strips MESSAGE-INTEGRITY: same attributes, FINGERPRINT only.
        const data =
          variant === 2
            ? encodeStunMessage(
                {
                  method: StunMethod.Binding,
                  cls: 'request',
                  transactionId: txid(i),
                  attributes: [attr(Attr.USERNAME, `${lfrag}:peer`, txid(i)), attr(Attr.USE_CANDIDATE, true, txid(i))],
                },
                { fingerprint: true },
              )
            : request;
        a.handleReceive(1 + i, { local: BASE, remote: from(i), data });
      }
      const { events } = drain(a);
      expect(a.role).toBe(role);
      expect(events.filter((e) => e.type !== 'state')).toEqual([]);
      expect(a.getChecklist(0).pairs.length).toBe(pairsBefore);
      expect(a.getChecklist(0).triggered.length).toBeLessThanOrEqual(1);
      expect(a.getChecklist(0).valid).toEqual([]);
      expect(a.getStats().pairs.every((p) => !p.nominated && p.requestsReceived === 0)).toBe(true);
    }
  });

  it('a forged success response (wrong key, or our own key) is ignored and does not validate the pair', () => {
    const a = agent('controlling');
    a.handleTimeout(0);
    const check = drain(a).sent.find((d) => d.remote.port === 6000)!;
    const m = tryDecodeStunMessage(check.data);
    if (!m.ok) throw new Error('bad check');
    const id = Uint8Array.from(m.message.transactionId);
    const ownKey = shortTermKey(a.getLocalParameters().pwd);
    for (const key of [shortTermKey('x'.repeat(22)), ownKey]) {
      a.handleReceive(5, { local: BASE, remote: check.remote, data: encodeCheckSuccess(id, { address: '198.51.100.1', port: 1 }, key) });
    }
    expect(a.getChecklist(0).valid).toEqual([]);
    expect(a.getStats().dropped['response-integrity']).toBe(2);
    // The genuine answer (remote pwd) still counts afterwards.
    a.handleReceive(6, { local: BASE, remote: check.remote, data: encodeCheckSuccess(id, BASE, shortTermKey(PEER_PWD)) });
    expect(a.getChecklist(0).valid).toHaveLength(1);
  });
});

describe('no reflection amplifier', () => {
  it('a spoofed flood of bad requests gets a bounded number of error responses per second', () => {
    const a = agent();
    a.handleTimeout(0);
    drain(a);
    const lfrag = a.getLocalParameters().ufrag;
    let sentBytes = 0;
    let receivedBytes = 0;
    let responses = 0;
    // 10 000 requests within one second: half without USERNAME (400), half with a bad MESSAGE-INTEGRITY (401).
    for (let i = 0; i < 10_000; i++) {
      const data =
        i % 2 === 0
          ? encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: txid(i), attributes: [] }, { fingerprint: true })
          : encodeCheckRequest({
              transactionId: txid(i),
              username: `${lfrag}:x`,
              priority: 1,
              role: 'controlled',
              tieBreaker: 1n,
              useCandidate: false,
              key: shortTermKey('z'.repeat(22)),
            });
      receivedBytes += data.length;
      a.handleReceive(1 + i / 10, { local: BASE, remote: from(i), data });
      for (const d of drain(a).sent) {
        responses++;
        sentBytes += d.data.length;
      }
    }
    expect(responses).toBeLessThanOrEqual(64);
    expect(sentBytes).toBeLessThan(receivedBytes / 10);
    expect(a.getStats().dropped['unauthenticated-reply-limit']).toBe(10_000 - responses);
    // The budget comes back a second later.
    a.handleReceive(1500, { local: BASE, remote: from(1), data: encodeStunMessage({ method: StunMethod.Binding, cls: 'request', transactionId: txid(1), attributes: [] }, { fingerprint: true }) });
    expect(drain(a).sent).toHaveLength(1);
  });
});
