/**
 * NAT behaviour for the virtual network, in the vocabulary of RFC 4787: mapping (§4.1) and filtering (§5) are each
 * endpoint-independent, address-dependent or address-and-port-dependent; mappings time out unless refreshed by
 * outbound traffic (§4.3, REQ-5, REQ-6); hairpinning (§6) presents the external source address (REQ-9a); port
 * preservation (§4.2.1) is optional and never overloads a port (REQ-3). `NatTranslator` is the pure table: the
 * virtual network asks it to translate each packet that crosses the NAT and it answers with the new address or a
 * drop reason. It reads no clock: `now` comes with every call.
 * @module
 */
import type { TransportAddress } from '../types.js';
import type { SeededRandom } from './random.js';

/** RFC 4787 §4.1 mapping and §5 filtering behaviours. */
export type NatBehavior = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/** How a NAT behaves. Every field has a default; `NatPresets` names the classic combinations. */
export interface NatBehaviorOptions {
  /** RFC 4787 §4.1. Default `'endpoint-independent'` (REQ-1). */
  readonly mapping?: NatBehavior;
  /** RFC 4787 §5. Default `'address-and-port-dependent'` (the common "port-restricted cone" home router). */
  readonly filtering?: NatBehavior;
  /**
   * Idle time after which a mapping (and the filter state tied to it) is deleted. RFC 4787 REQ-5 says not less than
   * two minutes and recommends five (the default, 300 000 ms); tests may set less to exercise expiry.
   */
  readonly mappingTimeoutMs?: number;
  /** RFC 4787 §4.3 REQ-6a: inbound packets also refresh the mapping. Default false (outbound refresh always). */
  readonly inboundRefresh?: boolean;
  /** RFC 4787 §6 REQ-9: hairpinning supported. Default true. */
  readonly hairpinning?: boolean;
  /** RFC 4787 §4.2.1: keep the internal port when it is free on the external address. Default false. */
  readonly portPreservation?: boolean;
  /** External ports handed out when not preserving (inclusive). Default 1024-65535 (REQ-3a for ports ≥ 1024). */
  readonly portRange?: readonly [min: number, max: number];
  /** A firewall that drops every UDP packet in both directions. Default false. */
  readonly blockUdp?: boolean;
}

/** The classic NAT types expressed as RFC 4787 behaviours. */
export const NatPresets = {
  /** Endpoint-independent mapping and filtering ("full cone"). */
  fullCone: { mapping: 'endpoint-independent', filtering: 'endpoint-independent' },
  /** Endpoint-independent mapping, address-dependent filtering ("restricted cone"). */
  restrictedCone: { mapping: 'endpoint-independent', filtering: 'address-dependent' },
  /** Endpoint-independent mapping, address-and-port-dependent filtering ("port-restricted cone"). */
  portRestrictedCone: { mapping: 'endpoint-independent', filtering: 'address-and-port-dependent' },
  /** Address-and-port-dependent mapping and filtering ("symmetric"): a new external port per destination. */
  symmetric: { mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent' },
  /** Address-dependent mapping and filtering. */
  addressDependent: { mapping: 'address-dependent', filtering: 'address-dependent' },
  /** A firewall that drops all UDP. */
  udpBlocked: { blockUdp: true },
} as const satisfies Record<string, NatBehaviorOptions>;

/** Default idle time-out of a mapping: five minutes (RFC 4787 REQ-5c). */
export const DEFAULT_MAPPING_TIMEOUT_MS = 300_000;

/** Why the NAT dropped a packet. */
export type NatDropReason = 'nat-udp-blocked' | 'nat-no-mapping' | 'nat-filtered' | 'nat-ports-exhausted';

/** The outcome of translating one packet. */
export type NatResult =
  | { readonly ok: true; readonly address: TransportAddress; readonly created: boolean }
  | { readonly ok: false; readonly reason: NatDropReason };

/** A live mapping as seen from outside (for assertions and debugging). */
export interface NatMappingInfo {
  readonly internal: TransportAddress;
  readonly external: TransportAddress;
  /** The destination that keyed this mapping: undefined for endpoint-independent mapping, port 0 for address-dependent. */
  readonly destination: TransportAddress | undefined;
  readonly createdMs: number;
  /** Last time the mapping was refreshed; it expires at `refreshedMs + mappingTimeoutMs`. */
  readonly refreshedMs: number;
  /** Remote endpoints the internal side has sent to through this mapping (the filter state). */
  readonly contacted: readonly TransportAddress[];
}

interface Mapping {
  readonly internal: TransportAddress;
  readonly externalPort: number;
  readonly key: string;
  readonly destination: TransportAddress | undefined;
  readonly createdMs: number;
  refreshedMs: number;
  readonly contactedIps: Set<string>;
  readonly contacted: Map<string, TransportAddress>;
}

const endpointKey = (a: TransportAddress): string => `${a.address}|${a.port}`;

/**
 * The translation table of one NAT with one external address. `outbound` maps an internal source to its external
 * address (creating the mapping when needed); `inbound` maps a packet arriving on the external address back to the
 * internal endpoint, applying the filtering behaviour. Deterministic: new external ports come from the injected
 * generator.
 */
export class NatTranslator {
  readonly #publicIp: string;
  readonly #mapping: NatBehavior;
  readonly #filtering: NatBehavior;
  readonly #timeoutMs: number;
  readonly #inboundRefresh: boolean;
  readonly #portPreservation: boolean;
  readonly #minPort: number;
  readonly #maxPort: number;
  readonly #blockUdp: boolean;
  readonly #hairpinning: boolean;
  readonly #random: SeededRandom;
  readonly #byKey = new Map<string, Mapping>();
  readonly #byPort = new Map<number, Mapping>();

  /** `publicIp` is the external address; `random` picks external ports. Throws `RangeError` on a bad port range. */
  constructor(publicIp: string, options: NatBehaviorOptions, random: SeededRandom) {
    this.#publicIp = publicIp;
    this.#mapping = options.mapping ?? 'endpoint-independent';
    this.#filtering = options.filtering ?? 'address-and-port-dependent';
    this.#timeoutMs = options.mappingTimeoutMs ?? DEFAULT_MAPPING_TIMEOUT_MS;
    this.#inboundRefresh = options.inboundRefresh ?? false;
    this.#portPreservation = options.portPreservation ?? false;
    this.#hairpinning = options.hairpinning ?? true;
    this.#blockUdp = options.blockUdp ?? false;
    const [min, max] = options.portRange ?? [1024, 65535];
    if (!(Number.isInteger(min) && Number.isInteger(max) && min >= 1 && max <= 65535 && min <= max)) {
      throw new RangeError(`bad NAT port range ${min}-${max}`);
    }
    if (!(this.#timeoutMs > 0)) throw new RangeError('mappingTimeoutMs must be positive');
    this.#minPort = min;
    this.#maxPort = max;
    this.#random = random;
  }

  /** The external IP address. */
  get publicIp(): string {
    return this.#publicIp;
  }

  /** The effective behaviour (defaults filled in). */
  get behavior(): Required<Omit<NatBehaviorOptions, 'portRange'>> & { readonly portRange: readonly [number, number] } {
    return {
      mapping: this.#mapping,
      filtering: this.#filtering,
      mappingTimeoutMs: this.#timeoutMs,
      inboundRefresh: this.#inboundRefresh,
      hairpinning: this.#hairpinning,
      portPreservation: this.#portPreservation,
      portRange: [this.#minPort, this.#maxPort],
      blockUdp: this.#blockUdp,
    };
  }

  /**
   * Translates a packet from `internal` to `remote`: returns the external source address to use, reusing a live
   * mapping according to the mapping behaviour (RFC 4787 §4.1) or creating one. Outbound traffic refreshes the mapping
   * (REQ-6) and opens the filter towards `remote`.
   */
  outbound(now: number, internal: TransportAddress, remote: TransportAddress): NatResult {
    if (this.#blockUdp) return { ok: false, reason: 'nat-udp-blocked' };
    const destination = this.#destinationKey(remote);
    const key = `${endpointKey(internal)}>${destination === undefined ? '*' : endpointKey(destination)}`;
    let m = this.#byKey.get(key);
    if (m && this.#expired(m, now)) {
      this.#remove(m);
      m = undefined;
    }
    let created = false;
    if (!m) {
      const port = this.#pickPort(now, internal.port);
      if (port === undefined) return { ok: false, reason: 'nat-ports-exhausted' };
      m = {
        internal,
        externalPort: port,
        key,
        destination,
        createdMs: now,
        refreshedMs: now,
        contactedIps: new Set(),
        contacted: new Map(),
      };
      this.#byKey.set(key, m);
      this.#byPort.set(port, m);
      created = true;
    }
    m.refreshedMs = now;
    m.contactedIps.add(remote.address);
    m.contacted.set(endpointKey(remote), remote);
    return { ok: true, address: { address: this.#publicIp, port: m.externalPort }, created };
  }

  /**
   * Translates a packet from `remote` arriving at `external` (an address of this NAT): returns the internal
   * destination, or a drop reason when no live mapping owns the port or the filter refuses the source (RFC 4787 §5).
   */
  inbound(now: number, remote: TransportAddress, external: TransportAddress): NatResult {
    if (this.#blockUdp) return { ok: false, reason: 'nat-udp-blocked' };
    if (external.address !== this.#publicIp) return { ok: false, reason: 'nat-no-mapping' };
    const m = this.#byPort.get(external.port);
    if (!m) return { ok: false, reason: 'nat-no-mapping' };
    if (this.#expired(m, now)) {
      this.#remove(m);
      return { ok: false, reason: 'nat-no-mapping' };
    }
    const allowed =
      this.#filtering === 'endpoint-independent' ||
      (this.#filtering === 'address-dependent' ? m.contactedIps.has(remote.address) : m.contacted.has(endpointKey(remote)));
    if (!allowed) return { ok: false, reason: 'nat-filtered' };
    if (this.#inboundRefresh) m.refreshedMs = now;
    return { ok: true, address: m.internal, created: false };
  }

  /** The live mappings at `now`, oldest first (expired ones are removed). */
  mappings(now: number): NatMappingInfo[] {
    const out: NatMappingInfo[] = [];
    for (const m of [...this.#byKey.values()]) {
      if (this.#expired(m, now)) {
        this.#remove(m);
        continue;
      }
      out.push({
        internal: m.internal,
        external: { address: this.#publicIp, port: m.externalPort },
        destination: m.destination,
        createdMs: m.createdMs,
        refreshedMs: m.refreshedMs,
        contacted: [...m.contacted.values()],
      });
    }
    return out;
  }

  /** Deletes every mapping, as a NAT reboot would. */
  clear(): void {
    this.#byKey.clear();
    this.#byPort.clear();
  }

  // RFC 4787 §4.1: which part of the destination keys the mapping.
  #destinationKey(remote: TransportAddress): TransportAddress | undefined {
    switch (this.#mapping) {
      case 'endpoint-independent':
        return undefined;
      case 'address-dependent':
        return { address: remote.address, port: 0 };
      case 'address-and-port-dependent':
        return remote;
    }
  }

  #expired(m: Mapping, now: number): boolean {
    return now - m.refreshedMs >= this.#timeoutMs;
  }

  #remove(m: Mapping): void {
    this.#byKey.delete(m.key);
    if (this.#byPort.get(m.externalPort) === m) this.#byPort.delete(m.externalPort);
  }

  // A port free on the external address. Never two live mappings on one port (REQ-3: no port overloading).
  #pickPort(now: number, internalPort: number): number | undefined {
    const free = (p: number): boolean => {
      const m = this.#byPort.get(p);
      if (!m) return true;
      if (this.#expired(m, now)) {
        this.#remove(m);
        return true;
      }
      return false;
    };
    if (this.#portPreservation && free(internalPort)) return internalPort;
    const span = this.#maxPort - this.#minPort + 1;
    for (let i = 0; i < 64; i++) {
      const p = this.#random.int(this.#minPort, this.#maxPort + 1);
      if (free(p)) return p;
    }
    // Nearly full: scan from a random start so the answer stays deterministic.
    const start = this.#random.int(0, span);
    for (let i = 0; i < span; i++) {
      const p = this.#minPort + ((start + i) % span);
      if (free(p)) return p;
    }
    return undefined;
  }
}
