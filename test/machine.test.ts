import { describe, expect, it } from 'vitest';
import { Deadlines } from '../src/machine.js';

describe('Deadlines (named timer table)', () => {
  it('next() is the earliest entry; clearing an entry or all of them takes it out', () => {
    const d = new Deadlines<'a' | 'b' | 'c'>();
    expect(d.next()).toBeUndefined();
    d.set('a', 30);
    d.set('b', 10);
    d.set('c', 20);
    expect(d.next()).toBe(10);
    expect(d.get('b')).toBe(10);
    d.set('b', undefined);
    expect(d.get('b')).toBeUndefined();
    expect(d.next()).toBe(20);
    d.set('c', Infinity); // Infinity means "never", like undefined
    expect(d.next()).toBe(30);
    d.set('a', 5); // an entry moves either way
    expect(d.next()).toBe(5);
    d.clear();
    expect(d.next()).toBeUndefined();
  });
});
