/**
 * Small machines for scripted tests on the virtual network: `ScriptedEndpoint` (send what you like, record what
 * arrives, optionally answer) and `listenOn` (restrict a machine to some local addresses, as a bound socket would).
 * @module
 */
import type { SansIoMachine } from '../machine.js';
import type { Datagram, TransportAddress } from '../types.js';

/** A datagram received by a `ScriptedEndpoint`, with the virtual time it arrived. */
export interface ReceivedDatagram {
  readonly time: number;
  readonly datagram: Datagram;
}

/** Options of a `ScriptedEndpoint`. */
export interface ScriptedEndpointOptions {
  /** Which datagrams to claim (default: every one offered). Unclaimed ones go to the next machine on the host. */
  readonly accept?: (datagram: Datagram) => boolean;
  /** Called for each claimed datagram; may call `send` to answer at once (an echo server, a scripted peer). */
  readonly onReceive?: (now: number, datagram: Datagram, endpoint: ScriptedEndpoint) => void;
}

/**
 * A scriptable sans-IO endpoint. `send` queues a datagram now; `sendAt` schedules one (honoured through
 * `pollTimeout`); every claimed datagram becomes an event (`ReceivedDatagram`) and is kept in `received`.
 */
export class ScriptedEndpoint implements SansIoMachine<ReceivedDatagram> {
  readonly #accept: ((d: Datagram) => boolean) | undefined;
  readonly #onReceive: ScriptedEndpointOptions['onReceive'];
  readonly #out: Datagram[] = [];
  readonly #events: ReceivedDatagram[] = [];
  readonly #received: ReceivedDatagram[] = [];
  readonly #scheduled: { readonly time: number; readonly seq: number; readonly datagram: Datagram }[] = [];
  #seq = 0;

  /** Creates an endpoint; attach it to a host with `host.attach(endpoint)`. */
  constructor(options: ScriptedEndpointOptions = {}) {
    this.#accept = options.accept;
    this.#onReceive = options.onReceive;
  }

  /** Everything claimed so far, oldest first. */
  get received(): readonly ReceivedDatagram[] {
    return this.#received;
  }

  /** Queues a datagram from `local` (an address of the host) to `remote`, sent at the next drain. */
  send(local: TransportAddress, remote: TransportAddress, data: Uint8Array): void {
    this.#out.push({ local, remote, data });
  }

  /** Schedules a datagram for virtual time `time` (ties keep call order). */
  sendAt(time: number, local: TransportAddress, remote: TransportAddress, data: Uint8Array): void {
    this.#scheduled.push({ time, seq: this.#seq++, datagram: { local, remote, data } });
    this.#scheduled.sort((a, b) => a.time - b.time || a.seq - b.seq);
  }

  /** Claims the datagram when `accept` allows it: records it, emits it as an event, calls `onReceive`. */
  handleReceive(now: number, datagram: Datagram): boolean {
    if (this.#accept && !this.#accept(datagram)) return false;
    const r = { time: now, datagram };
    this.#received.push(r);
    this.#events.push(r);
    this.#onReceive?.(now, datagram, this);
    return true;
  }

  /** Queues the scheduled datagrams that are due. */
  handleTimeout(now: number): void {
    while (this.#scheduled.length > 0 && this.#scheduled[0]!.time <= now) this.#out.push(this.#scheduled.shift()!.datagram);
  }

  /** Next datagram to send. */
  pollTransmit(): Datagram | undefined {
    return this.#out.shift();
  }

  /** Next received datagram not yet drained as an event. */
  pollEvent(): ReceivedDatagram | undefined {
    return this.#events.shift();
  }

  /** Time of the earliest scheduled send. */
  pollTimeout(): number | undefined {
    return this.#scheduled[0]?.time;
  }
}

/**
 * Wraps `machine` so that it is offered only datagrams addressed to one of `locals` (IP and port), as if it owned
 * sockets bound there; everything else is declined, so another machine on the same host can take it.
 */
export function listenOn<Event>(machine: SansIoMachine<Event>, locals: readonly TransportAddress[]): SansIoMachine<Event> {
  const keys = new Set(locals.map((l) => `${l.address}|${l.port}`));
  return {
    handleReceive: (now, d) => keys.has(`${d.local.address}|${d.local.port}`) && machine.handleReceive(now, d),
    handleTimeout: (now) => machine.handleTimeout(now),
    pollTransmit: () => machine.pollTransmit(),
    pollEvent: () => machine.pollEvent(),
    pollTimeout: () => machine.pollTimeout(),
  };
}
