/**
 * Copies bytes with memcpy even when either side is shared memory (a SharedArrayBuffer or a shared
 * WebAssembly.Memory: the download, upload and direct-I/O buffers).
 *
 * Why not Buffer#copy or TypedArray#set: V8 copies to or from shared memory with relaxed atomic
 * accesses, word by word, and byte by byte when the two offsets are not equally aligned — as a
 * chunk's bytes landing 28 bytes into an NBD structured reply are (figures: docs/performance.md).
 * Buffer#fill with a
 * Buffer value as long as the range is one memcpy in Node's C++ (a documented use of fill: the value
 * is repeated to fill the range, here exactly once). No other thread writes either side meanwhile
 * (the pools hand a buffer to one user at a time), so nothing needs the relaxed accesses.
 */

/** Copies source[sourceStart, sourceEnd) into target at targetOffset; returns the bytes copied (as Buffer#copy). */
export function copyBytes(source: Uint8Array, target: Uint8Array, targetOffset = 0, sourceStart = 0, sourceEnd = source.length): number {
  const length = Math.min(sourceEnd - sourceStart, target.length - targetOffset);
  if (length <= 0) return 0;
  const into = Buffer.from(target.buffer, target.byteOffset + targetOffset, length);
  into.fill(Buffer.from(source.buffer, source.byteOffset + sourceStart, length));
  return length;
}
