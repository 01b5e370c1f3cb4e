/** Splitting a byte range of a volume at chunk boundaries: the one loop every range operation uses. */

/** The part of a byte range that falls in one chunk. */
export interface ChunkPiece {
  readonly index: number;
  /** Where the piece starts within its chunk. */
  readonly within: number;
  readonly length: number;
  /** Where the piece starts within the range (its offset in the caller's buffer). */
  readonly rangeOffset: number;
}

/**
 * Visits the pieces of [offset, offset + length) in order. A visit that returns false stops the
 * walk, and the walk then returns false.
 */
export function walkChunks(offset: number, length: number, chunkSize: number, visit: (piece: ChunkPiece) => boolean | void): boolean {
  const end = offset + length;
  for (let position = offset; position < end;) {
    const index = Math.floor(position / chunkSize);
    const within = position - index * chunkSize;
    const pieceLength = Math.min(chunkSize - within, end - position);
    if (visit({ index, within, length: pieceLength, rangeOffset: position - offset }) === false) return false;
    position += pieceLength;
  }
  return true;
}
