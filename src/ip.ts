/**
 * IP literal parsing and formatting, pure and allocation-light. Used by the STUN address attributes and the
 * candidate grammar. IPv6 is formatted in RFC 5952 canonical form so addresses compare as strings.
 * @module
 */

/** 4 or 16 bytes for a valid IPv4/IPv6 literal (zone ids `%eth0` are ignored), otherwise `undefined`. */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(':')) return parseIpv6(text);
  return parseIpv4(text);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(input: string): Uint8Array | undefined {
  const pct = input.indexOf('%');
  let text = pct >= 0 ? input.slice(0, pct) : input;
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const out = new Uint8Array(16);
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const groups: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (i === items.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (!v4) return undefined;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        groups.push(parseInt(g, 16));
      }
    }
    return groups;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const groups = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i]! >> 8;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  return out;
}

/** Formats 4 or 16 address bytes as a literal (IPv6 in RFC 5952 form: lower case, longest zero run compressed). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new RangeError(`IP address must be 4 or 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** `4` or `6` for an IP literal, `0` for anything else (e.g. an mDNS name). */
export function ipFamily(text: string): 0 | 4 | 6 {
  const b = parseIp(text);
  return b === undefined ? 0 : b.length === 4 ? 4 : 6;
}

// Per-packet paths (socket demux, relay lookup) canonicalise the same few addresses over and over; parsing costs
// about as much as the rest of the data path, so results are memoised in a small table that is simply reset when
// it grows (a peer cannot make it grow without bound).
const canonicalCache = new Map<string, string>();
const CANONICAL_CACHE_MAX = 1024;

/** Canonical text of an IP literal (e.g. `::FFFF:0:1` → `::ffff:0:1`); non-IP text is returned unchanged. */
export function canonicalIp(text: string): string {
  const hit = canonicalCache.get(text);
  if (hit !== undefined) return hit;
  const b = parseIp(text);
  const out = b === undefined ? text : formatIp(b);
  if (canonicalCache.size >= CANONICAL_CACHE_MAX) canonicalCache.clear();
  canonicalCache.set(text, out);
  return out;
}
