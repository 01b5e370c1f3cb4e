/**
 * Copies bytes with memcpy even when either side is shared memory. V8 copies shared memory with
 * relaxed atomic accesses, byte by byte when the offsets are not equally aligned (figures:
 * docs/performance.md); Buffer#fill with a Buffer value as long as the range is one memcpy (a
 * documented use of fill). No other thread writes either side meanwhile (the pools lend a buffer to
 * one user at a time), so nothing needs the relaxed accesses.
 */

/** Copies source[sourceStart, sourceEnd) into target at targetOffset; returns the bytes copied (as Buffer#copy). */
export function copyBytes(source: Uint8Array, target: Uint8Array, targetOffset = 0, sourceStart = 0, sourceEnd = source.length): number {
  const length = Math.min(sourceEnd - sourceStart, target.length - targetOffset);
  if (length <= 0) return 0;
  const into = Buffer.from(target.buffer, target.byteOffset + targetOffset, length);
  into.fill(Buffer.from(source.buffer, source.byteOffset + sourceStart, length));
  return length;
}
