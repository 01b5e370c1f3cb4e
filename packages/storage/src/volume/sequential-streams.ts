/**
 * Finds sequential readers among interleaved reads (nbdcopy and qemu-img read over four connections,
 * each in order), so read-ahead works for several at once. Up to MAX_STREAMS streams, each by where
 * its last read ended: a read starting there continues it, any other replaces the stream used
 * longest ago. A few comparisons per read and no allocation once full: every read passes here.
 * Writes use their own instance (write-behind: which chunks a sequential writer finished).
 */

/** More than the connections a client opens (nbdcopy: 4) plus a few interleaved readers. */
export const MAX_STREAMS = 8;

export interface ReadStream {
  /** Where the stream's first read began: it has covered [start, end) in order. */
  start: number;
  /** Where the stream's last read ended. */
  end: number;
  /** Reads that continued it (0 for a stream's first read). */
  reads: number;
  /** Last chunk index already fetched ahead for it (the caller's bookkeeping), -1 when none. */
  aheadUntil: number;
  /** Tick of its last read, to find the stream used longest ago. */
  usedAt: number;
}

export class SequentialStreams {
  readonly #streams: ReadStream[] = [];
  #tick = 0;

  /** Notes a read of [offset, end); returns its stream once that has `minReads` reads in a row before this one. */
  note(offset: number, end: number, minReads: number): ReadStream | undefined {
    const tick = ++this.#tick;
    let stream: ReadStream | undefined;
    for (const candidate of this.#streams) {
      if (candidate.end === offset) {
        stream = candidate;
        break;
      }
    }
    if (stream !== undefined) {
      stream.reads++;
    } else {
      stream = this.#replaceable();
      stream.start = offset;
      stream.reads = 0;
      stream.aheadUntil = -1;
    }
    stream.end = end;
    stream.usedAt = tick;
    return stream.reads >= minReads ? stream : undefined;
  }

  #replaceable(): ReadStream {
    if (this.#streams.length < MAX_STREAMS) {
      const stream: ReadStream = { start: -1, end: -1, reads: 0, aheadUntil: -1, usedAt: 0 };
      this.#streams.push(stream);
      return stream;
    }
    let oldest = this.#streams[0]!;
    for (const stream of this.#streams) if (stream.usedAt < oldest.usedAt) oldest = stream;
    return oldest;
  }
}
