/**
 * The public vocabulary of the testing `TurnServer` (`turn-server.ts`, which re-exports all of it): its RFC 8656
 * lifetimes, options, events, drop reasons, counters and the allocation view given to assertions.
 * @module
 */
import type { RandomSource, TransportAddress } from '../types.js';

/** RFC 8656 §9: the Permission Lifetime MUST be 300 seconds. */
export const TURN_PERMISSION_LIFETIME_SEC = 300;
/** RFC 8656 §12: a channel binding lasts 10 minutes unless refreshed. */
export const TURN_CHANNEL_LIFETIME_SEC = 600;
/** RFC 8656 §3.2: the default allocation lifetime is 10 minutes. */
export const TURN_DEFAULT_LIFETIME_SEC = 600;
/** RFC 8656 §7.2: a maximum allowed lifetime of no more than one hour is RECOMMENDED. */
export const TURN_MAX_LIFETIME_SEC = 3600;
/** RFC 8656 §7.2: an EVEN-PORT reservation is held at least 30 seconds. */
export const TURN_RESERVATION_LIFETIME_MS = 30_000;

/** Options of a {@link TurnServer}. */
export interface TurnServerOptions {
  /** Client-facing addresses (UDP). Datagrams to any other address are refused (`handleReceive` returns false). */
  readonly listen: TransportAddress | readonly TransportAddress[];
  /** IPs relayed addresses are taken from (at most one per family is used). Default: the listening IPs. */
  readonly relayIps?: readonly string[];
  /** REALM of the long-term credentials. */
  readonly realm: string;
  /** username → password. */
  readonly users: Readonly<Record<string, string>>;
  /** Nonces, relay ports and reservation tokens come from here. */
  readonly random: RandomSource;
  /** Default 600 (RFC 8656 §3.2). */
  readonly defaultLifetimeSec?: number;
  /** Default 3600 (RFC 8656 §7.2). */
  readonly maxLifetimeSec?: number;
  /** Default 300; RFC 8656 §9 fixes 300 s, change only to test a client's handling. */
  readonly permissionLifetimeSec?: number;
  /** Default 600 (RFC 8656 §12). */
  readonly channelLifetimeSec?: number;
  /** How long a nonce stays valid; afterwards requests get 438. Default one hour (RFC 8656 §5 SHOULD). */
  readonly nonceLifetimeMs?: number;
  /** Relay ports, inclusive. Default 49152-65535 (RFC 8656 §7.2 SHOULD). */
  readonly relayPortRange?: readonly [min: number, max: number];
  /** RFC 8656 §5: 486 beyond this many allocations per username. Default unlimited. */
  readonly maxAllocationsPerUser?: number;
  /** SOFTWARE in Allocate and Refresh responses (RFC 8656 §5 SHOULD). Default `'icewire-testing'`. */
  readonly software?: string;
  /** Answer Binding requests on the listening addresses (default true, as deployed TURN servers do). */
  readonly answerBinding?: boolean;
}

/** Events of a {@link TurnServer}. */
export type TurnServerEvent =
  | {
      readonly type: 'allocation-created';
      readonly client: TransportAddress;
      readonly relayed: readonly TransportAddress[];
      readonly username: string;
      readonly lifetimeSec: number;
    }
  | { readonly type: 'allocation-refreshed'; readonly client: TransportAddress; readonly lifetimeSec: number }
  | {
      readonly type: 'allocation-deleted';
      readonly client: TransportAddress;
      readonly relayed: readonly TransportAddress[];
      readonly reason: 'refresh' | 'expired';
    }
  | { readonly type: 'permission'; readonly client: TransportAddress; readonly peerIp: string }
  | { readonly type: 'channel-bound'; readonly client: TransportAddress; readonly channel: number; readonly peer: TransportAddress };

/** Why the server dropped a datagram. */
export type TurnServerDropReason =
  | 'malformed'
  | 'not-turn'
  | 'no-allocation'
  | 'no-permission'
  | 'no-channel'
  | 'bad-indication'
  | 'unsupported-method'
  | 'response';

/** Counters of a {@link TurnServer}. */
export interface TurnServerStats {
  readonly requests: number;
  readonly successResponses: number;
  /** Error responses by code. */
  readonly errorResponses: Readonly<Record<number, number>>;
  /** Datagrams relayed from a client to a peer (Send indications plus ChannelData). */
  readonly toPeer: number;
  /** Datagrams relayed from a peer to a client (Data indications plus ChannelData). */
  readonly toClient: number;
  readonly dropped: Readonly<Partial<Record<TurnServerDropReason, number>>>;
}

/** One allocation as seen from outside (for assertions). */
export interface TurnAllocationInfo {
  readonly client: TransportAddress;
  readonly server: TransportAddress;
  readonly relayed: readonly TransportAddress[];
  readonly username: string;
  readonly expiresMs: number;
  /** Peer IPs with a live permission. */
  readonly permissions: readonly string[];
  /** Live channel bindings. */
  readonly channels: readonly { readonly channel: number; readonly peer: TransportAddress }[];
}
