/** Goal verdicts for bench notes, so no row with a goal leaves the reader to compare. @module */

/** `goal ≤ 1.5x: met` or `goal ≤ 1.5x: NOT met` for a value that must stay at or under `max`. */
export function goalAtMost(value: number, max: number, unit = 'x'): string {
  return `goal ≤ ${max}${unit === 'x' ? 'x' : ` ${unit}`}: ${value <= max ? 'met' : 'NOT met'}`;
}

/** The same for a value that must reach at least `min`. */
export function goalAtLeast(value: number, min: number, unit = 'x'): string {
  return `goal ≥ ${min}${unit === 'x' ? 'x' : ` ${unit}`}: ${value >= min ? 'met' : 'NOT met'}`;
}
