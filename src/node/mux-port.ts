/**
 * What the UDP and TCP muxes hand each agent: its router id and the ufrags routed to it (a restart adds one and
 * later drops the old). Methods live on the prototype: a mux holds thousands of these.
 * @module
 */

/** The ufrag table of a mux router, as a port uses it. */
export interface UfragTable {
  addUfrag(id: number, ufrag: string): void;
  removeUfrag(id: number, ufrag: string): void;
  ufragsOf(id: number): readonly string[];
}

/** One agent's place on a mux; `leave()` is the mux's own removal of the agent, run once by `close()`. */
export abstract class MuxPortBase {
  /** The router's id of the agent. */
  readonly id: number;
  readonly #table: UfragTable;
  #closed = false;

  constructor(table: UfragTable, id: number) {
    this.#table = table;
    this.id = id;
  }

  /** Routes another ufrag to the agent (a restart's). */
  addUfrag(ufrag: string): void {
    this.#table.addUfrag(this.id, ufrag);
  }

  /** Stops routing `ufrag` to the agent. */
  removeUfrag(ufrag: string): void {
    this.#table.removeUfrag(this.id, ufrag);
  }

  /** The ufrags routed to the agent. */
  get ufrags(): readonly string[] {
    return this.#table.ufragsOf(this.id);
  }

  /** Leaves the mux (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.leave();
  }

  get closed(): boolean {
    return this.#closed;
  }

  protected abstract leave(): void;
}
