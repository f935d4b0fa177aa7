// Seeded pseudo-random test data, so a failing run can be repeated exactly. The seed is fixed
// (DEFAULT_SEED) unless TEST_SEED sets another; tests that draw from it name the seed in their
// title, so it shows in every failure report. mulberry32: a 32-bit state, good enough for test
// inputs and never for anything secret.

/** The seed used when TEST_SEED is not set. */
export const DEFAULT_SEED = 0x5eed_2026;

export interface Prng {
  /** The seed this generator started from. */
  readonly seed: number;
  /** A float in [0, 1). */
  readonly next: () => number;
  /** An integer in [0, n). */
  readonly int: (n: number) => number;
  /** One element of a non-empty list. */
  readonly pick: <T>(xs: readonly T[]) => T;
  /** n pseudo-random bytes. */
  readonly bytes: (n: number) => Buffer;
  /** n pseudo-random bytes as lowercase hex (2n characters). */
  readonly hex: (n: number) => string;
}

/** The seed from TEST_SEED (decimal or 0x hex), else DEFAULT_SEED. */
export function testSeed(): number {
  const raw = process.env['TEST_SEED'];
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  const seed = Number(raw);
  if (!Number.isInteger(seed)) throw new Error(`TEST_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return seed >>> 0;
}

/** A mulberry32 generator started from seed (default: testSeed()). */
export function createPrng(seed: number = testSeed()): Prng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const bytes = (n: number): Buffer => {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = int(256);
    return out;
  };
  return {
    seed: seed >>> 0,
    next,
    int,
    pick: <T>(xs: readonly T[]): T => {
      if (xs.length === 0) throw new RangeError('pick from an empty list');
      return xs[int(xs.length)]!;
    },
    bytes,
    hex: (n) => bytes(n).toString('hex'),
  };
}
