/**
 * Starts a real coturn (`turnserver`) on 127.0.0.1 with a throw-away configuration in a temp dir, for tests and the
 * TURN bench. Loopback only. The process is killed by PID in `stop()` (call it from afterAll), and the temp dir is
 * removed. When `turnserver` is missing, `startCoturn` throws (tests must not skip silently; CI installs coturn).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface CoturnOptions {
  readonly user?: string;
  readonly password?: string;
  readonly realm?: string;
  /** `--stale-nonce=<sec>`: nonce lifetime (coturn default without the flag: nonces never go stale). */
  readonly staleNonceSec?: number;
  readonly maxAllocateLifetimeSec?: number;
  readonly permissionLifetimeSec?: number;
  readonly channelLifetimeSec?: number;
  /** Start a TLS listener with a self-signed certificate made now with openssl. Default true. */
  readonly tls?: boolean;
  /** `--alternate-server=<ip:port>`: answer Allocate with 300 Try Alternate. */
  readonly alternateServer?: string;
  /** Extra relay IPs besides 127.0.0.1 (e.g. `::1` for IPv6 and dual allocations). */
  readonly extraRelayIps?: readonly string[];
  /** More long-term users besides `user`, as [name, password] pairs. */
  readonly extraUsers?: readonly (readonly [string, string])[];
  /** `--user-quota`. */
  readonly userQuota?: number;
  readonly extraArgs?: readonly string[];
  /**
   * RFC 5780 NAT behaviour discovery: listen on this second loopback address too (e.g. `127.0.0.2`), on the main and
   * an alternate port (`altPort` in the result). Off by default (`--no-rfc5780`).
   */
  readonly rfc5780AltIp?: string;
}

export interface Coturn {
  readonly host: '127.0.0.1';
  /** UDP and TCP listening port. */
  readonly port: number;
  /** TLS listening port (0 when TLS is off). */
  readonly tlsPort: number;
  /** The RFC 5780 alternate port (0 without `rfc5780AltIp`). */
  readonly altPort: number;
  readonly user: string;
  readonly password: string;
  readonly realm: string;
  /** PEM of the self-signed certificate (trust it with `ca`). */
  readonly certPem: string;
  readonly pid: number;
  readonly dir: string;
  /** The coturn log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

// Servers still running when the test process exits (a crashed worker, a forgotten stop()) are killed by PID.
const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Version line of the installed turnserver, or undefined when it is not installed. */
export function coturnVersion(): string | undefined {
  const r = spawnSync('turnserver', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error || r.status !== 0) return undefined;
  return (r.stdout || r.stderr).trim().split('\n')[0];
}

/** Throws a loud error when coturn is missing (in CI and locally: these tests must never pass vacuously). */
export function requireCoturn(): string {
  const v = coturnVersion();
  if (v === undefined) {
    throw new Error(
      `turnserver (coturn) is not installed${process.env['CI'] ? ' on CI' : ''}: run "apt-get install -y coturn openssl". ` +
        'The TURN integration tests need a real server and do not skip.',
    );
  }
  return v;
}

async function freePort(): Promise<number> {
  // A port free for both TCP and UDP (coturn listens on both).
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port found');
}

function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return { cert, key };
}

async function waitForTcp(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = tcpConnect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`coturn did not listen on tcp ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts coturn and resolves once its UDP/TCP (and TLS) listeners accept connections. */
export async function startCoturn(options: CoturnOptions = {}): Promise<Coturn> {
  requireCoturn();
  const dir = mkdtempSync(join(tmpdir(), 'icewire-coturn-'));
  const user = options.user ?? 'u';
  const password = options.password ?? 'p';
  const realm = options.realm ?? 'icewire.test';
  const tls = options.tls ?? true;
  const port = await freePort();
  const tlsPort = tls ? await freePort() : 0;
  const altPort = options.rfc5780AltIp !== undefined ? await freePort() : 0;
  // A random relay range so parallel servers rarely collide.
  const minPort = 20000 + 200 * Math.floor((randomBytes(2).readUInt16BE(0) / 65536) * 200);
  const logFile = join(dir, 'turn.log');
  const args = [
    '-n',
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    `--min-port=${minPort}`,
    `--max-port=${minPort + 199}`,
    '--lt-cred-mech',
    `--user=${user}:${password}`,
    `--realm=${realm}`,
    '--allow-loopback-peers',
    '--no-cli',
    '--no-dtls',
    ...(options.rfc5780AltIp !== undefined ? [`--listening-ip=${options.rfc5780AltIp}`, `--alt-listening-port=${altPort}`] : ['--no-rfc5780']),
    '--no-tcp-relay',
    '--no-multicast-peers',
    `--pidfile=${join(dir, 'turn.pid')}`,
    `--log-file=${logFile}`,
    '--simple-log',
    '--no-stdout-log',
    '--verbose',
  ];
  let certPem = '';
  if (tls) {
    const { cert, key } = makeCert(dir);
    certPem = readFileSync(cert, 'utf8');
    args.push(`--tls-listening-port=${tlsPort}`, `--cert=${cert}`, `--pkey=${key}`);
  } else {
    args.push('--no-tls');
  }
  if (options.staleNonceSec !== undefined) args.push(`--stale-nonce=${options.staleNonceSec}`);
  if (options.maxAllocateLifetimeSec !== undefined) args.push(`--max-allocate-lifetime=${options.maxAllocateLifetimeSec}`);
  if (options.permissionLifetimeSec !== undefined) args.push(`--permission-lifetime=${options.permissionLifetimeSec}`);
  if (options.channelLifetimeSec !== undefined) args.push(`--channel-lifetime=${options.channelLifetimeSec}`);
  if (options.alternateServer !== undefined) args.push(`--alternate-server=${options.alternateServer}`);
  for (const ip of options.extraRelayIps ?? []) args.push(`--relay-ip=${ip}`);
  for (const [u, p] of options.extraUsers ?? []) args.push(`--user=${u}:${p}`);
  if (options.userQuota !== undefined) args.push(`--user-quota=${options.userQuota}`);
  args.push(...(options.extraArgs ?? []));

  const child: ChildProcess = spawn('turnserver', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  let exited = false;
  if (child.pid !== undefined) live.add(child.pid);
  child.once('exit', () => {
    exited = true;
    if (child.pid !== undefined) live.delete(child.pid);
  });
  const log = (): string => {
    const file = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    return file + stderr;
  };
  const stop = async (): Promise<void> => {
    if (!exited && child.pid !== undefined) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      process.kill(child.pid, 'SIGTERM');
      const t = setTimeout(() => {
        if (!exited && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      }, 2000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 10_000;
    await waitForTcp(port, deadline);
    if (tls) await waitForTcp(tlsPort, deadline);
    if (exited) throw new Error('turnserver exited at start');
  } catch (e) {
    const text = log();
    await stop();
    throw new Error(`coturn failed to start: ${(e as Error).message}\n${text.slice(-3000)}`);
  }
  return { host: '127.0.0.1', port, tlsPort, altPort, user, password, realm, certPem, pid: child.pid!, dir, log, stop };
}
