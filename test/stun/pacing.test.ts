import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GlobalPacer, isPacingValue, negotiateTa } from '../../src/stun/pacing.js';
import { processWidePacer } from '../../src/node/pacer.js';

describe('Ta negotiation (RFC 8445 §14.2)', () => {
  it('uses the higher proposal, 50 ms standing in for a missing one', () => {
    expect(negotiateTa()).toBe(50);
    expect(negotiateTa(20)).toBe(50);
    expect(negotiateTa(undefined, 80)).toBe(80);
    expect(negotiateTa(100, 80)).toBe(100);
    expect(negotiateTa(30, 40)).toBe(40); // both proposed: the higher one, even below the default
  });
  it('one validation rule for every proposal: the RFC 8839 §5.5 grammar (1*10DIGIT)', () => {
    for (const ok of [0, 1, 5, 50, 9_999_999_999]) expect(isPacingValue(ok)).toBe(true);
    for (const bad of [-1, 0.5, 10_000_000_000, Number.NaN, Infinity]) expect(isPacingValue(bad)).toBe(false);
  });
});

describe('GlobalPacer', () => {
  it('grants at most one slot per interval', () => {
    const p = new GlobalPacer({ intervalMs: 5 });
    const a = p.register();
    const b = p.register();
    expect(a.request(0, 'ordinary')).toBe(true);
    expect(b.request(1, 'ordinary')).toBe(false);
    expect(b.nextSlot()).toBe(5);
    expect(b.request(5, 'ordinary')).toBe(true);
    expect(p.minSpacingMs).toBe(5);
  });

  it('serves waiting clients round robin and triggered requests first', () => {
    const p = new GlobalPacer({ intervalMs: 5 });
    const [a, b, c] = [p.register(), p.register(), p.register()];
    expect(a.request(0, 'ordinary')).toBe(true);
    expect(a.request(1, 'ordinary')).toBe(false); // a is back in line
    expect(b.request(2, 'ordinary')).toBe(false);
    expect(c.request(3, 'triggered')).toBe(false);
    // At 5 the triggered client c goes first even though a and b asked earlier.
    expect(a.request(5, 'ordinary')).toBe(false);
    expect(c.request(5, 'triggered')).toBe(true);
    expect(a.nextSlot()).toBe(10);
    expect(b.nextSlot()).toBe(15);
    expect(b.request(10, 'ordinary')).toBe(false);
    expect(a.request(10, 'ordinary')).toBe(true);
    expect(b.request(15, 'ordinary')).toBe(true);
  });

  it('keeps a late head in place for headGraceMs, then rotates it (timers fire late; lateness must not cost fairness)', () => {
    const p = new GlobalPacer({ intervalMs: 5 }); // default grace 20 ms
    const [a, b] = [p.register(), p.register()];
    expect(a.request(0, 'ordinary')).toBe(true);
    expect(a.request(1, 'ordinary')).toBe(false); // a waits for the slot at 5
    expect(b.request(2, 'ordinary')).toBe(false);
    expect(b.request(10, 'ordinary')).toBe(false); // a is late, but within its grace: b must not jump the line
    expect(b.nextSlot()).toBeGreaterThan(10); // and b is not told to spin
    expect(a.request(18, 'ordinary')).toBe(true); // a came 13 ms late and still gets its turn
    expect(b.request(23, 'ordinary')).toBe(true);
    // A head that never comes back is rotated once its grace (5 + 20 ms) has passed.
    const [c, d] = [p.register(), p.register()];
    expect(c.request(24, 'ordinary')).toBe(false);
    expect(d.request(25, 'ordinary')).toBe(false);
    expect(d.request(40, 'ordinary')).toBe(false);
    expect(d.request(48, 'ordinary')).toBe(true);
  });

  it('a late asker rotates at most the one head that had its chance, not the whole line', () => {
    // Regression: with real timers a waiter that reached the front through others' grants was rotated at once,
    // because its grace was counted from when it joined; one late request then jumped the whole line.
    const p = new GlobalPacer({ intervalMs: 5 });
    const [x, a, b, c, d] = [p.register(), p.register(), p.register(), p.register(), p.register()];
    expect(x.request(0, 'ordinary')).toBe(true);
    expect(a.request(1, 'ordinary')).toBe(false);
    expect(b.request(2, 'ordinary')).toBe(false);
    expect(c.request(3, 'ordinary')).toBe(false);
    expect(d.request(4, 'ordinary')).toBe(false);
    expect(d.request(100, 'ordinary')).toBe(false); // a is rotated; b becomes head now and gets its grace
    expect(b.request(101, 'ordinary')).toBe(true);
    expect(c.request(106, 'ordinary')).toBe(true);
    expect(d.request(111, 'ordinary')).toBe(true);
    expect(a.request(116, 'ordinary')).toBe(true); // a, rotated to the back, is served after the others
  });

  it('rotates a head that does not claim its slot', () => {
    const p = new GlobalPacer({ intervalMs: 5, headGraceMs: 5 });
    const [a, b] = [p.register(), p.register()];
    expect(a.request(0, 'ordinary')).toBe(true);
    expect(a.request(1, 'ordinary')).toBe(false);
    expect(b.request(2, 'ordinary')).toBe(false);
    expect(b.nextSlot()).toBe(10);
    expect(b.request(10, 'ordinary')).toBe(true); // a never came back at 5
  });

  it('drops a client that keeps missing its slot (an agent dropped without close())', () => {
    const p = new GlobalPacer({ intervalMs: 5, headGraceMs: 5 });
    const [ghost, b] = [p.register(), p.register()];
    ghost.request(0, 'ordinary');
    ghost.request(1, 'ordinary'); // waits, then never comes back
    let t = 2;
    let grants = 0;
    for (let i = 0; i < 10; i++) {
      for (;;) {
        if (b.request(t, 'ordinary')) break;
        t = b.nextSlot()!;
      }
      grants++;
      t += 1;
    }
    expect(grants).toBe(10);
    expect(p.waiting).toBe(0);
  });

  it('disabled: always grants; withdraw leaves the line', () => {
    const off = new GlobalPacer({ enabled: false });
    const x = off.register();
    expect(x.request(0, 'ordinary') && x.request(0, 'ordinary')).toBe(true);
    const p = new GlobalPacer();
    const [a, b] = [p.register(), p.register()];
    a.request(100, 'ordinary');
    b.request(101, 'ordinary');
    b.withdraw();
    expect(p.waiting).toBe(0);
  });

  it('property: any request pattern obeying nextSlot never yields two grants closer than the interval', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 7 }), fc.boolean()), { minLength: 1, maxLength: 200 }), (ops) => {
        const p = new GlobalPacer({ intervalMs: 5 });
        const clients = Array.from({ length: 5 }, () => p.register());
        let now = 0;
        const grants: number[] = [];
        for (const [who, dt, trig] of ops) {
          now += dt;
          if (clients[who]!.request(now, trig ? 'triggered' : 'ordinary')) grants.push(now);
        }
        for (let i = 1; i < grants.length; i++) expect(grants[i]! - grants[i - 1]!).toBeGreaterThanOrEqual(5);
      }),
    );
  });
});

describe('GlobalPacer.noteSent: spacing between datagrams, not decisions (RFC 8445 §14.2)', () => {
  it('opens the next slot one interval after the datagram really left', () => {
    const p = new GlobalPacer({ intervalMs: 5 });
    const [a, b] = [p.register(), p.register()];
    expect(a.request(0, 'ordinary')).toBe(true);
    p.noteSent(3.5); // a's datagram left 3.5 ms after its grant (its timer batch ran long)
    expect(b.request(5, 'ordinary')).toBe(false); // 5 ms after the grant, only 1.5 ms after the datagram
    expect(b.nextSlot()).toBe(8.5);
    expect(b.request(8.5, 'ordinary')).toBe(true);
  });

  it('never moves the last grant back: a report older than the last grant changes nothing', () => {
    const p = new GlobalPacer({ intervalMs: 5 });
    const [a, b] = [p.register(), p.register()];
    expect(a.request(10, 'ordinary')).toBe(true);
    p.noteSent(7); // stale report (e.g. a datagram of an earlier grant)
    expect(b.request(14.9, 'ordinary')).toBe(false);
    expect(b.request(15, 'ordinary')).toBe(true);
    expect(() => p.noteSent(Number.NaN)).toThrow(RangeError);
  });

  it('property: with every send reported, consecutive datagrams are at least one interval apart', () => {
    // Model of the edge: each grant's datagram leaves `lag` ms after the grant (lag >= 0: never before the decision),
    // and the edge reports that time. Grants that ignore the report would let datagrams bunch up.
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 60 })), { minLength: 1, maxLength: 200 }),
        (ops) => {
          const p = new GlobalPacer({ intervalMs: 5 });
          const clients = Array.from({ length: 4 }, () => p.register());
          let now = 0;
          const sent: number[] = [];
          for (const [who, dtTenths, lagTenths] of ops) {
            now += dtTenths / 10;
            if (!clients[who]!.request(now, 'ordinary')) continue;
            const at = now + lagTenths / 10;
            sent.push(at);
            p.noteSent(at);
            now = at; // the edge's clock moved on while the datagram was built and written
          }
          for (let i = 1; i < sent.length; i++) expect(sent[i]! - sent[i - 1]!).toBeGreaterThanOrEqual(5);
        },
      ),
    );
  });
});

describe('who paces globally', () => {
  function agents(pacer?: GlobalPacer) {
    return import('../../src/checklist/agent-core.js').then(async ({ AgentCore }) => {
      const { host, seededRandom, signalled } = await import('../checklist/harness.js');
      return [1, 2].map((i) => {
        const a = new AgentCore({ random: seededRandom(i), ...(pacer ? { pacer } : {}) });
        a.addStream(1);
        a.addLocalCandidate(0, host(`10.0.0.${i}`, 5000));
        a.setRemoteParameters(0, { ufrag: 'peer', pwd: 'p'.repeat(22) });
        a.addRemoteCandidate(0, signalled(host(`10.9.0.${i}`, 9)));
        return a;
      });
    });
  }
  function firstChecks(list: Awaited<ReturnType<typeof agents>>): number[] {
    const sentAt: number[] = [];
    for (let now = 0; now <= 20; now++) {
      for (const a of list) {
        const t = a.pollTimeout();
        if (t !== undefined && t <= now) a.handleTimeout(now);
        for (let d = a.pollTransmit(); d; d = a.pollTransmit()) sentAt.push(now);
      }
    }
    for (const a of list) a.close();
    return sentAt;
  }

  it('the sans-IO core paces globally only with an injected pacer', async () => {
    expect(firstChecks(await agents())).toEqual([0, 0]);
    const paced = firstChecks(await agents(new GlobalPacer()));
    expect(paced).toHaveLength(2);
    expect(paced[1]! - paced[0]!).toBeGreaterThanOrEqual(5);
  });

  it('the Node edge owns one instance per process', () => {
    expect(processWidePacer()).toBe(processWidePacer());
    expect(processWidePacer().intervalMs).toBe(5);
  });
});
