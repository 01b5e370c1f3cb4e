/** Deterministic randomness for tests: the same seed gives the same sequence on every run. */
export function seededRandom(seed: number): () => number {
  // mulberry32: tiny, fast, good enough to pick offsets and fill buffers.
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` pseudo-random bytes determined by `seed` (never all zero for length > 16). */
export function seededBytes(length: number, seed: number): Buffer {
  const random = seededRandom(seed + 1);
  const bytes = Buffer.allocUnsafe(length);
  let i = 0;
  for (; i + 4 <= length; i += 4) bytes.writeUInt32LE(Math.floor(random() * 4294967296), i);
  for (; i < length; i++) bytes[i] = Math.floor(random() * 256);
  return bytes;
}
