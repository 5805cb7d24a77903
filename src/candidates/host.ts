/**
 * Host address selection (RFC 8445 §5.1.1.1), pure: takes an interface list shaped like `os.networkInterfaces()`
 * and returns the addresses to bind host candidates on. `src/node/interfaces.ts` feeds it the real list.
 * @module
 */
import { canonicalIp, parseIp } from '../ip.js';

/** One address of an interface, as `os.networkInterfaces()` reports it (Node 18+ uses `'IPv4'`; 18.0-18.3 used 4). */
export interface NetworkInterfaceAddress {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6' | 4 | 6;
  readonly internal: boolean;
  readonly netmask?: string;
  readonly mac?: string;
  readonly cidr?: string | null;
  readonly scopeid?: number;
}

/** The shape of `os.networkInterfaces()`. */
export type NetworkInterfaceMap = Readonly<Record<string, readonly NetworkInterfaceAddress[] | undefined>>;

/** An address chosen for a host candidate. */
export interface HostAddress {
  readonly interfaceName: string;
  /** Canonical IP text. */
  readonly address: string;
  readonly family: 4 | 6;
  /** True for loopback addresses (only present with `includeLoopback`). */
  readonly loopback: boolean;
  /** IPv6 scope id, for link-local addresses. */
  readonly scopeId?: number;
}

/** Options of `selectHostAddresses`. */
export interface HostSelectionOptions {
  /** Keep only interfaces for which this returns true. */
  readonly interfaceFilter?: (name: string) => boolean;
  /** Keep only addresses for which this returns true (called with the canonical IP). */
  readonly addressFilter?: (address: string) => boolean;
  /** RFC 8445 §5.1.1.1 excludes loopback addresses; tests and demos turn them on. Default false. */
  readonly includeLoopback?: boolean;
  /** Include IPv6 link-local (fe80::/10) addresses. Default false. */
  readonly includeLinkLocal?: boolean;
  /** Include IPv4-mapped IPv6 addresses (RFC 8445 §5.1.1.1: only for IPv6-only applications). Default false. */
  readonly includeIpv4Mapped?: boolean;
  /** Address families to keep (default both). */
  readonly families?: readonly (4 | 6)[];
}

/** Why an address is never a host candidate, or undefined when it may be one. Exported for tests. */
export function excludedReason(
  address: string,
  options: Pick<HostSelectionOptions, 'includeLoopback' | 'includeLinkLocal' | 'includeIpv4Mapped'> = {},
): string | undefined {
  const b = parseIp(address);
  if (b === undefined) return 'not an IP address';
  if (b.length === 4) {
    if (b.every((x) => x === 0)) return 'unspecified';
    if (b[0] === 127 && !options.includeLoopback) return 'loopback';
    if (b[0]! >= 224) return 'multicast or reserved';
    return undefined;
  }
  const zeroTo = (n: number) => b.subarray(0, n).every((x) => x === 0);
  if (zeroTo(16)) return 'unspecified';
  if (zeroTo(15) && b[15] === 1) return options.includeLoopback ? undefined : 'loopback';
  if (b[0] === 0xff) return 'multicast';
  // RFC 8445 §5.1.1.1: deprecated IPv4-compatible (::a.b.c.d) and site-local (fec0::/10) MUST NOT be used.
  if (zeroTo(12)) return 'IPv4-compatible';
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0xc0) return 'site-local';
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80 && !options.includeLinkLocal) return 'link-local';
  // ...and IPv4-mapped (::ffff:a.b.c.d) SHOULD NOT be.
  if (zeroTo(10) && b[10] === 0xff && b[11] === 0xff && !options.includeIpv4Mapped) return 'IPv4-mapped';
  return undefined;
}

/**
 * Picks host candidate addresses from an interface list, in interface then address order, without duplicates.
 * Interfaces flagged `internal` count as loopback.
 */
export function selectHostAddresses(interfaces: NetworkInterfaceMap, options: HostSelectionOptions = {}): HostAddress[] {
  const out: HostAddress[] = [];
  const seen = new Set<string>();
  const families = options.families ?? [4, 6];
  for (const [name, addrs] of Object.entries(interfaces)) {
    if (addrs === undefined) continue;
    if (options.interfaceFilter && !options.interfaceFilter(name)) continue;
    for (const a of addrs) {
      const family = a.family === 'IPv4' || a.family === 4 ? 4 : 6;
      if (!families.includes(family)) continue;
      const bytes = parseIp(a.address);
      if (bytes === undefined || (bytes.length === 4) !== (family === 4)) continue;
      const address = canonicalIp(a.address);
      const isLoopback = a.internal || excludedReason(address) === 'loopback';
      if (isLoopback && !options.includeLoopback) continue;
      if (excludedReason(address, options) !== undefined) continue;
      if (options.addressFilter && !options.addressFilter(address)) continue;
      if (seen.has(address)) continue;
      seen.add(address);
      out.push({
        interfaceName: name,
        address,
        family,
        loopback: isLoopback,
        ...(family === 6 && a.scopeid !== undefined && a.scopeid !== 0 ? { scopeId: a.scopeid } : {}),
      });
    }
  }
  return out;
}
