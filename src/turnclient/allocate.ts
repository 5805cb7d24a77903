/**
 * The Allocate messages of a `TurnClient` (RFC 8656 §7): which request options may go together (§7.1), the
 * request's attributes (§7.1; DONT-FRAGMENT left out after a 420 names it, §7.4) and what a success grants (§7.3).
 * The transaction itself, its retries and the allocation's state are `TurnClient`'s.
 * @module
 */
import { TurnError } from '../errors.js';
import { Attr, attr, getAttribute, hasAttribute, type AttributeCodec } from '../stun/attributes.js';
import type { DecodedStunMessage } from '../stun/message.js';
import type { TransportAddress } from '../types.js';
import { PROTOCOL_UDP, TurnAttr, type AddressErrorCodeValue, type AddressFamily } from './attributes.js';
import type { OperationBase } from './transactions.js';
import type { TurnClientOptions } from './types.js';

/** The Allocate request options of {@link TurnClientOptions}, checked and with their defaults. */
export interface AllocateRequest {
  readonly requestedFamily: AddressFamily | undefined;
  readonly additionalFamily: 'ipv6' | undefined;
  readonly lifetimeSec: number | undefined;
  readonly dontFragment: boolean;
  readonly evenPort: boolean | 'reserve';
  readonly reservationToken: Uint8Array | undefined;
}

/** Reads the Allocate options; throws `TurnError` `'bad-config'` on a combination RFC 8656 §7.1 forbids. */
export function allocateRequest(options: TurnClientOptions): AllocateRequest {
  if (options.requestedFamily !== undefined && options.additionalFamily !== undefined) {
    // RFC 8656 §7.1: MUST NOT include both.
    throw new TurnError(0, 'bad-config', 'requestedFamily and additionalFamily are mutually exclusive');
  }
  if (options.reservationToken !== undefined && (options.evenPort || options.requestedFamily || options.additionalFamily)) {
    throw new TurnError(0, 'bad-config', 'reservationToken excludes evenPort, requestedFamily and additionalFamily (RFC 8656 §7.1)');
  }
  if (options.additionalFamily !== undefined && options.evenPort === 'reserve') {
    throw new TurnError(0, 'bad-config', 'additionalFamily excludes an EVEN-PORT reservation (RFC 8656 §7.1)');
  }
  return {
    requestedFamily: options.requestedFamily,
    additionalFamily: options.additionalFamily,
    lifetimeSec: options.lifetimeSec,
    dontFragment: options.dontFragment ?? false,
    evenPort: options.evenPort ?? false,
    reservationToken: options.reservationToken,
  };
}

/** The Allocate operation for `r`; `dropDontFragment` once a 420 said the server lacks DONT-FRAGMENT. */
export function allocateOperation(r: AllocateRequest, dropDontFragment: boolean): OperationBase {
  return {
    kind: 'allocate',
    build: (txid) => {
      const a = [attr(TurnAttr.REQUESTED_TRANSPORT, PROTOCOL_UDP, txid)];
      if (r.requestedFamily) a.push(attr(TurnAttr.REQUESTED_ADDRESS_FAMILY, r.requestedFamily, txid));
      if (r.additionalFamily) a.push(attr(TurnAttr.ADDITIONAL_ADDRESS_FAMILY, r.additionalFamily, txid));
      if (r.lifetimeSec !== undefined) a.push(attr(TurnAttr.LIFETIME, r.lifetimeSec, txid));
      if (r.dontFragment && !dropDontFragment) a.push(attr(TurnAttr.DONT_FRAGMENT, true, txid));
      if (r.evenPort) a.push(attr(TurnAttr.EVEN_PORT, { reserve: r.evenPort === 'reserve' }, txid));
      if (r.reservationToken) a.push(attr(TurnAttr.RESERVATION_TOKEN, r.reservationToken, txid));
      return a;
    },
    dropDontFragment,
  };
}

/** What an Allocate success grants. */
export interface AllocateSuccess {
  readonly relayed: TransportAddress[];
  readonly mapped: TransportAddress | undefined;
  /** LIFETIME, when the server sent one. */
  readonly lifetimeSec: number | undefined;
  readonly addressErrors: AddressErrorCodeValue[];
  readonly reservationToken: Uint8Array | undefined;
}

function allAttributes<T>(m: DecodedStunMessage, codec: AttributeCodec<T>): T[] {
  const out: T[] = [];
  for (const a of m.attributes) {
    if (a.type !== codec.type) continue;
    const v = codec.decode(a.value, m.transactionId);
    if (v !== undefined) out.push(v);
  }
  return out;
}

/**
 * Reads an Allocate success, or returns undefined when it carries a mapped or relayed address of a family the client
 * cannot handle (RFC 8656 §7.3: the client must then delete the allocation).
 */
export function readAllocateSuccess(m: DecodedStunMessage): AllocateSuccess | undefined {
  const relayed = allAttributes(m, TurnAttr.XOR_RELAYED_ADDRESS);
  const relayedCount = m.attributes.filter((a) => a.type === TurnAttr.XOR_RELAYED_ADDRESS.type).length;
  if (relayed.length < relayedCount || (hasAttribute(m, Attr.XOR_MAPPED_ADDRESS) && getAttribute(m, Attr.XOR_MAPPED_ADDRESS) === undefined)) {
    return undefined;
  }
  return {
    relayed,
    mapped: getAttribute(m, Attr.XOR_MAPPED_ADDRESS),
    lifetimeSec: getAttribute(m, TurnAttr.LIFETIME),
    addressErrors: allAttributes(m, TurnAttr.ADDRESS_ERROR_CODE),
    reservationToken: getAttribute(m, TurnAttr.RESERVATION_TOKEN),
  };
}
