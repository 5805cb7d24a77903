/**
 * The public shapes of `TurnClient`: its options (the Allocate request of RFC 8656 §7.1, with the lifetimes of §8,
 * §9 and §12), its events (allocation §7.3, refresh §8, permissions §10, data §11, channels §12, 300 redirects
 * §7.4), its life-cycle states and its counters. Types only, apart from the default allocation lifetime (§6).
 * @module
 */
import type { PacerClient } from '../stun/pacing.js';
import type { TurnError } from '../errors.js';
import type { TransactionTiming } from '../stun/transaction.js';
import type { RandomSource, TransportAddress } from '../types.js';
import type { AddressErrorCodeValue, AddressFamily, IcmpValue } from './attributes.js';

/** RFC 8656 §6: default allocation lifetime. */
export const DEFAULT_ALLOCATION_LIFETIME_SEC = 600;

/** Transport between client and server. */
export type TurnTransport = 'udp' | 'tcp' | 'tls';

/** Configuration of a TurnClient. */
export interface TurnClientOptions {
  /** The server's transport address (already resolved; see `uri.ts` and `src/node/turn-resolve.ts`). */
  readonly server: TransportAddress;
  /** Default `'udp'`. For TCP/TLS the Node edge writes each transmit's bytes to the stream. */
  readonly transport?: TurnTransport;
  /** The base: the local socket address (for TCP/TLS the connection's local address). */
  readonly local: TransportAddress;
  readonly username: string;
  readonly password: string;
  readonly random: RandomSource;
  /** SOFTWARE sent in Allocate and Refresh requests (RFC 8656 §5 SHOULD). */
  /**
   * The process-wide pacer's handle (RFC 8445 §14.2). An Allocate sent again after a 401, 438, 420 or 300 is a new
   * gathering transaction and waits for its slot; the first Allocate is paced by whoever starts it (the gatherer).
   */
  readonly pacer?: PacerClient;
  readonly software?: string;
  /** REQUESTED-ADDRESS-FAMILY: ask for a relayed address of this family only. */
  readonly requestedFamily?: AddressFamily;
  /** ADDITIONAL-ADDRESS-FAMILY (only `'ipv6'` is valid): ask for a dual IPv4 + IPv6 allocation. */
  readonly additionalFamily?: 'ipv6';
  /** LIFETIME requested in Allocate and Refresh (a hint; the server decides). Omitted when unset. */
  readonly lifetimeSec?: number;
  /** Send DONT-FRAGMENT in the Allocate (retried without it on 420, RFC 8656 §7.4). */
  readonly dontFragment?: boolean;
  /** EVEN-PORT: `true` for an even port, `'reserve'` to also reserve the next one (R bit). */
  readonly evenPort?: boolean | 'reserve';
  /** RESERVATION-TOKEN from an earlier EVEN-PORT reservation. */
  readonly reservationToken?: Uint8Array;
  /** Bind a channel automatically on the first send to a peer (default true). */
  readonly autoBindChannel?: boolean;
  /** Lifetime assumed for permissions; RFC 8656 fixes 300 s. Only for tests against a server configured otherwise. */
  readonly permissionLifetimeSec?: number;
  /** Lifetime assumed for channels; RFC 8656 fixes 600 s. Only for tests against a server configured otherwise. */
  readonly channelLifetimeSec?: number;
  /** Retransmission settings for requests (RFC 8489 §6.2 defaults). */
  readonly timing?: TransactionTiming;
  /** Add FINGERPRINT to requests (default true; helps demultiplexing on a socket shared with ICE). */
  readonly fingerprint?: boolean;
  /** Datagrams held per peer IP while its permission is being installed (default 64; oldest dropped first). */
  readonly maxQueuedPerPeer?: number;
}

/** The operation a TURN error belongs to. */
export type TurnOperation = 'allocate' | 'refresh' | 'deallocate' | 'permission' | 'channel';

/** Events of a TurnClient. */
export type TurnClientEvent =
  | {
      readonly type: 'allocated';
      /** One relayed address, or two (IPv4 and IPv6) for a dual allocation. */
      readonly relayed: readonly TransportAddress[];
      /** XOR-MAPPED-ADDRESS: the client's server-reflexive address as the server saw it. */
      readonly mapped: TransportAddress | undefined;
      readonly lifetimeSec: number;
      /** ADDRESS-ERROR-CODE entries: families the server refused in a dual request (RFC 8656 §7.3). */
      readonly addressErrors: readonly AddressErrorCodeValue[];
      readonly reservationToken: Uint8Array | undefined;
    }
  | { readonly type: 'refreshed'; readonly lifetimeSec: number }
  | { readonly type: 'data'; readonly peer: TransportAddress; readonly data: Uint8Array; readonly channel: number | undefined }
  | { readonly type: 'icmp'; readonly peer: TransportAddress; readonly icmp: IcmpValue }
  | { readonly type: 'permission'; readonly peerIp: string; readonly refreshed: boolean }
  | { readonly type: 'channel'; readonly peer: TransportAddress; readonly channel: number; readonly refreshed: boolean }
  | {
      readonly type: 'error';
      readonly error: TurnError;
      readonly operation: TurnOperation;
      readonly peer: TransportAddress | undefined;
      /** True when the allocation is gone (state is now `'failed'`). */
      readonly fatal: boolean;
    }
  /** 300 Try Alternate was followed. For TCP/TLS the edge must connect there and call `redirectConnected`. */
  | { readonly type: 'redirect'; readonly server: TransportAddress; readonly domain: string | undefined }
  | { readonly type: 'closed' };

/** Life cycle of the allocation. */
export type TurnClientState = 'idle' | 'allocating' | 'redirecting' | 'allocated' | 'closing' | 'closed' | 'failed';

/** Counters for dropped input and sent data. */
export interface TurnClientStats {
  /** Undecodable STUN or ChannelData from the server, or responses missing required attributes. */
  malformed: number;
  /** Responses dropped for bad or missing integrity once authenticated. */
  unauthenticated: number;
  /** ChannelData on a channel that is not bound. */
  unknownChannel: number;
  /** Data indications from a peer without a permission, and sends dropped because a permission failed. */
  noPermission: number;
  /** Data dropped because a peer's pending-permission queue was full. */
  queueOverflow: number;
  sendIndications: number;
  channelDataSent: number;
  dataIndications: number;
  channelDataReceived: number;
  requests: number;
  /** Requests re-sent after a 401 challenge. */
  authRetries: number;
  /** Requests re-sent after 438 Stale Nonce. */
  staleNonceRetries: number;
}
