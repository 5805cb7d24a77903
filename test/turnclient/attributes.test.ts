import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attributeName, decodeStunMessage, encodeStunMessage, getAttribute, knownAttributeTypes, StunMethod, attr } from '../../src/stun/index.js';
import { TurnAttr, TurnAttributeType } from '../../src/turnclient/attributes.js';

describe('TURN attributes (RFC 8656 §18)', () => {
  it('registers every TURN attribute with its RFC number and name', () => {
    const known = knownAttributeTypes();
    for (const [name, type] of Object.entries(TurnAttributeType)) {
      expect(known.has(type)).toBe(true);
      expect(attributeName(type)).toBe(name.replace(/_/g, '-'));
    }
  });

  it('encodes the fixed layouts byte for byte', () => {
    const t = new Uint8Array(12);
    expect([...attr(TurnAttr.CHANNEL_NUMBER, 0x4001, t).value]).toEqual([0x40, 0x01, 0, 0]);
    expect([...attr(TurnAttr.LIFETIME, 600, t).value]).toEqual([0, 0, 2, 0x58]);
    expect([...attr(TurnAttr.REQUESTED_TRANSPORT, 17, t).value]).toEqual([17, 0, 0, 0]);
    expect([...attr(TurnAttr.REQUESTED_ADDRESS_FAMILY, 'ipv6', t).value]).toEqual([2, 0, 0, 0]);
    expect([...attr(TurnAttr.ADDITIONAL_ADDRESS_FAMILY, 'ipv6', t).value]).toEqual([2, 0, 0, 0]);
    expect([...attr(TurnAttr.EVEN_PORT, { reserve: true }, t).value]).toEqual([0x80]);
    expect([...attr(TurnAttr.DONT_FRAGMENT, true, t).value]).toEqual([]);
    expect([...attr(TurnAttr.ADDRESS_ERROR_CODE, { family: 'ipv4', code: 508, reason: 'x' }, t).value]).toEqual([1, 0, 5, 8, 0x78]);
    expect([...attr(TurnAttr.ICMP, { type: 3, code: 4, errorData: 1400 }, t).value]).toEqual([0, 0, 3, 4, 0, 0, 0x05, 0x78]);
  });

  it('decodes malformed values as absent', () => {
    const txid = new Uint8Array(12).fill(1);
    const msg = decodeStunMessage(
      encodeStunMessage({
        method: StunMethod.Allocate,
        cls: 'request',
        transactionId: txid,
        attributes: [
          { type: TurnAttributeType.LIFETIME, value: Uint8Array.of(1, 2) },
          { type: TurnAttributeType.REQUESTED_ADDRESS_FAMILY, value: Uint8Array.of(3, 0, 0, 0) },
          { type: TurnAttributeType.RESERVATION_TOKEN, value: Uint8Array.of(1) },
        ],
      }),
    );
    expect(getAttribute(msg, TurnAttr.LIFETIME)).toBeUndefined();
    expect(getAttribute(msg, TurnAttr.REQUESTED_ADDRESS_FAMILY)).toBeUndefined();
    expect(getAttribute(msg, TurnAttr.RESERVATION_TOKEN)).toBeUndefined();
  });

  it('round-trips XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS and DATA inside messages', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.ipV4(), fc.ipV6(), fc.nat(65535), fc.uint8Array({ maxLength: 50 }), (txid, v4, v6, port, data) => {
        const m = decodeStunMessage(
          encodeStunMessage({
            method: StunMethod.Send,
            cls: 'indication',
            transactionId: txid,
            attributes: [attr(TurnAttr.XOR_PEER_ADDRESS, { address: v4, port }, txid), attr(TurnAttr.XOR_RELAYED_ADDRESS, { address: v6, port }, txid), attr(TurnAttr.DATA, data, txid)],
          }),
        );
        expect(getAttribute(m, TurnAttr.XOR_PEER_ADDRESS)).toEqual({ address: v4, port });
        expect(getAttribute(m, TurnAttr.XOR_RELAYED_ADDRESS)?.port).toBe(port);
        expect(getAttribute(m, TurnAttr.DATA)).toEqual(data);
      }),
    );
  });
});
