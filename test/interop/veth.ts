/**
 * Two network namespaces joined by a veth pair with private test addresses, for tests that need a real link between
 * two peers (Chromium's mDNS stack refuses a loopback-only namespace). Each side gets a default route and the
 * multicast route 224.0.0.0/4 over the veth; nothing routes further (forwarding stays off in a new namespace), so no
 * packet can leave the two namespaces. Created and removed by the test, under unique names.
 */
import { spawnSync } from 'node:child_process';

export interface VethSide {
  /** Namespace name (`ip netns exec <name> ...`). */
  readonly name: string;
  /** The veth address inside it. */
  readonly address: string;
}

const live = new Set<VethNamespaces>();
process.once('exit', () => {
  for (const v of live) v.remove();
});

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

/** `a` and `b`, each in its own namespace, linked by one veth pair (10.213.<n>.1 and .2, /24). */
export class VethNamespaces {
  readonly a: VethSide;
  readonly b: VethSide;
  #removed = false;

  private constructor(a: VethSide, b: VethSide) {
    this.a = a;
    this.b = b;
  }

  static create(tag = 'icewire-mdns'): VethNamespaces {
    const id = `${process.pid % 10000}-${Math.floor(Math.random() * 1e5)}`;
    const subnet = `10.213.${Math.floor(Math.random() * 250) + 1}`;
    const a = { name: `${tag}-a-${id}`, address: `${subnet}.1` };
    const b = { name: `${tag}-b-${id}`, address: `${subnet}.2` };
    const v = new VethNamespaces(a, b);
    live.add(v);
    try {
      ip(['netns', 'add', a.name]);
      ip(['netns', 'add', b.name]);
      for (const side of [a, b]) {
        // No duplicate address detection: the IPv6 link-local address is ready when the link comes up, not ~2 s
        // later. Chromium treats its arrival as a network change and aborts mDNS resolutions then in flight.
        const r = spawnSync('ip', ['netns', 'exec', side.name, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0'], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`sysctl accept_dad in ${side.name}: ${r.stderr.trim()}`);
      }
      // Interface names are created inside the namespaces, so they cannot clash with the host's.
      ip(['link', 'add', 'veth0', 'netns', a.name, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', b.name]);
      for (const [side, peer] of [
        [a, b],
        [b, a],
      ] as const) {
        ip(['-n', side.name, 'link', 'set', 'lo', 'up']);
        ip(['-n', side.name, 'addr', 'add', `${side.address}/24`, 'dev', 'veth0']);
        ip(['-n', side.name, 'link', 'set', 'veth0', 'up']);
        // A default route (browsers pick their host address by it); it only leads to the other namespace.
        ip(['-n', side.name, 'route', 'add', 'default', 'via', peer.address, 'dev', 'veth0']);
        ip(['-n', side.name, 'route', 'add', '224.0.0.0/4', 'dev', 'veth0']);
      }
    } catch (e) {
      v.remove();
      throw e;
    }
    return v;
  }

  /** Removes both namespaces (the veth pair goes with them). Idempotent. */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    live.delete(this);
    spawnSync('ip', ['netns', 'del', this.a.name]);
    spawnSync('ip', ['netns', 'del', this.b.name]);
  }
}
