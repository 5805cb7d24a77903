/**
 * A chaos-suite peer: one `IceAgent` in a child process of its own, as users run it, driven over IPC by
 * `peers.ts` (which bundles this file with the sources, so the child runs the code under test). Requests carry an
 * `id` and get one reply; agent events are pushed as they happen, stamped with the child's wall clock.
 *
 * Data: `startData` sends a sequence-numbered RTP-like datagram (first byte 0x80, RFC 7983) every `intervalMs`;
 * received ones are counted and the largest gap between two arrivals is kept (reset by `resetGap`).
 */
import { IceAgent, type IceAgentOptions } from '../../src/index.js';
import type { Candidate } from '../../src/candidates/candidate.js';
import type { IceParameters } from '../../src/checklist/types.js';

type Request =
  | { readonly cmd: 'init'; readonly options: IceAgentOptions }
  | { readonly cmd: 'gather' }
  | { readonly cmd: 'remote'; readonly params: IceParameters; readonly candidates: readonly Candidate[]; readonly end: boolean }
  | { readonly cmd: 'restart' }
  | { readonly cmd: 'local' }
  | { readonly cmd: 'startData'; readonly intervalMs: number; readonly size: number }
  | { readonly cmd: 'stopData' }
  | { readonly cmd: 'resetGap' }
  | { readonly cmd: 'report' }
  | { readonly cmd: 'close' };

let agent: IceAgent | undefined;
let pump: NodeJS.Timeout | undefined;
let txSeq = 0;
let refused = 0;
const rx = { count: 0, lastAt: 0, maxGapMs: 0, lastSeq: -1, outOfOrder: 0 };

const emit = (name: string, fields: object = {}): void => {
  process.send?.({ type: 'event', name, t: Date.now(), ...fields });
};

function selected() {
  const p = agent?.getSelectedCandidatePair();
  return p ? { local: `${p.local.address}:${p.local.port}`, remote: `${p.remote.address}:${p.remote.port}`, localType: p.local.type, remoteType: p.remote.type } : undefined;
}

async function handle(r: Request): Promise<unknown> {
  switch (r.cmd) {
    case 'init': {
      // Loopback only (the test network rule); functions do not cross IPC, so the filter is set here.
      const a = new IceAgent({ includeLoopback: true, addressFilter: (x) => x === '127.0.0.1', ...r.options });
      agent = a;
      a.on('statechange', (state) => emit('state', { state, selected: selected() }));
      a.on('selectedcandidatepairchange', () => emit('selected', { selected: selected() }));
      a.on('data', (d) => {
        const now = Date.now();
        if (rx.count > 0) rx.maxGapMs = Math.max(rx.maxGapMs, now - rx.lastAt);
        rx.lastAt = now;
        rx.count++;
        const seq = d.length >= 8 ? new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(4) : -1;
        if (seq <= rx.lastSeq) rx.outOfOrder++;
        rx.lastSeq = Math.max(rx.lastSeq, seq);
      });
      return undefined;
    }
    case 'gather':
      await agent!.gather();
      return { params: agent!.getLocalParameters(), candidates: agent!.getLocalCandidates() };
    case 'remote':
      agent!.setRemoteParameters(r.params);
      for (const c of r.candidates) agent!.addRemoteCandidate(c);
      if (r.end) agent!.endOfRemoteCandidates();
      return undefined;
    case 'restart':
      agent!.restart();
      return { params: agent!.getLocalParameters(), candidates: agent!.getLocalCandidates() };
    case 'local':
      return { params: agent!.getLocalParameters(), candidates: agent!.getLocalCandidates() };
    case 'startData': {
      clearInterval(pump);
      const buf = Buffer.alloc(Math.max(8, r.size), 0x5a);
      buf[0] = 0x80;
      pump = setInterval(() => {
        buf.writeUInt32BE(txSeq, 4);
        if (agent!.send(buf)) txSeq++;
        else refused++;
      }, r.intervalMs);
      return undefined;
    }
    case 'stopData':
      clearInterval(pump);
      pump = undefined;
      return { sent: txSeq, refused };
    case 'resetGap':
      rx.maxGapMs = 0;
      rx.lastAt = Date.now();
      return undefined;
    case 'report': {
      const stats = agent?.getStats();
      const resources: Record<string, number> = {};
      for (const k of process.getActiveResourcesInfo()) resources[k] = (resources[k] ?? 0) + 1;
      return {
        state: agent?.state,
        role: agent?.role,
        selected: selected(),
        pairs: (stats?.pairs ?? []).map((p) => ({ id: p.id, remote: `${p.remote.address}:${p.remote.port}`, state: p.state, nominated: p.nominated })),
        dropped: stats?.dropped ?? {},
        checksSent: stats?.checksSent ?? 0,
        rx: { ...rx, sinceLastMs: rx.count ? Date.now() - rx.lastAt : -1 },
        tx: { sent: txSeq, refused },
        resources,
      };
    }
    case 'close':
      clearInterval(pump);
      pump = undefined;
      await agent?.close();
      return undefined;
  }
}

process.on('message', (m: Request & { readonly id: number }) => {
  handle(m).then(
    (result) => process.send?.({ type: 'reply', id: m.id, ok: true, result }),
    (e: unknown) => process.send?.({ type: 'reply', id: m.id, ok: false, error: String((e as Error)?.stack ?? e) }),
  );
});
// The parent going away ends the child: no orphan keeps sockets open.
process.on('disconnect', () => {
  clearInterval(pump);
  void (agent?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
process.send?.({ type: 'up' });
