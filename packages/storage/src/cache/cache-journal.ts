/**
 * The disk cache's journal: which chunk files exist and whether each is clean (a copy of a
 * committed generation) or dirty (written since). Append-only, fixed-size records with a CRC,
 * so replay stops cleanly at a torn last record. Every record states a chunk's whole state
 * (not a delta), which makes replay idempotent: the snapshot (`state`, rewritten atomically by
 * temp + fsync + rename + directory fsync) followed by any journal records, even ones already
 * folded into the snapshot, gives the same result.
 *
 * Record (32 bytes): u32 crc32(bytes 4..31) | u8 kind | 3 pad | u32 index hi | u32 index lo |
 * u32 value hi | u32 value lo | 8 pad. kind: 1 = clean (value = generation), 2 = dirty, 3 = drop,
 * 4 = landing (value = generation): dirty, and a commit naming its current content as that generation
 * was sent to the index; whether it landed is the index's to say at the next open (cache-replay.ts).
 */
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, ftruncateSync, readSync } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { StorageError } from "../errors";
import { closePinned } from "./pinned-fds";

export const RECORD_SIZE = 32;
export const KIND_CLEAN = 1;
export const KIND_DIRTY = 2;
export const KIND_DROP = 3;
export const KIND_LANDING = 4;

const STATE_MAGIC = 0x53544353; // "STCS"
const TWO_32 = 2 ** 32;

export type JournalRecordKind = typeof KIND_CLEAN | typeof KIND_DIRTY | typeof KIND_DROP | typeof KIND_LANDING;

/** What replay yields per chunk still present: clean with its generation, or dirty (maybe landing as a generation). */
export type ReplayedChunk = { dirty: false; generation: number } | { dirty: true; landing?: number };

export function encodeRecord(target: Buffer, offset: number, kind: JournalRecordKind, index: number, value: number): void {
  target.fill(0, offset, offset + RECORD_SIZE);
  target[offset + 4] = kind;
  target.writeUInt32BE(Math.floor(index / TWO_32), offset + 8);
  target.writeUInt32BE(index >>> 0, offset + 12);
  target.writeUInt32BE(Math.floor(value / TWO_32), offset + 16);
  target.writeUInt32BE(value >>> 0, offset + 20);
  target.writeUInt32BE(crc32(target.subarray(offset + 4, offset + RECORD_SIZE)), offset);
}

/** Applies records from `data` to `chunks`; returns the byte length of the valid prefix. */
function applyRecords(data: Buffer, chunks: Map<number, ReplayedChunk>): number {
  let offset = 0;
  for (; offset + RECORD_SIZE <= data.length; offset += RECORD_SIZE) {
    if (data.readUInt32BE(offset) !== crc32(data.subarray(offset + 4, offset + RECORD_SIZE))) break;
    const kind = data[offset + 4];
    const index = data.readUInt32BE(offset + 8) * TWO_32 + data.readUInt32BE(offset + 12);
    const value = data.readUInt32BE(offset + 16) * TWO_32 + data.readUInt32BE(offset + 20);
    if (kind === KIND_CLEAN) chunks.set(index, { dirty: false, generation: value });
    else if (kind === KIND_DIRTY) chunks.set(index, { dirty: true });
    else if (kind === KIND_DROP) chunks.delete(index);
    else if (kind === KIND_LANDING) chunks.set(index, { dirty: true, landing: value });
    else break;
  }
  return offset;
}

/**
 * The chunk states of a closed cache folder, read without touching it (no journal created, no torn
 * tail cut off): for inspecting a folder moved aside, such as an orphan set.
 */
export function readChunkStates(dir: string): Map<number, ReplayedChunk> {
  const chunks = new Map<number, ReplayedChunk>();
  const statePath = path.join(dir, "state");
  if (existsSync(statePath)) {
    const state = readFileSync(statePath);
    if (state.length < 8 || state.readUInt32BE(0) !== STATE_MAGIC || state.readUInt32BE(4) !== crc32(state.subarray(8))) {
      throw new StorageError("EIO", `cache state ${statePath} is corrupt`);
    }
    applyRecords(state.subarray(8), chunks);
  }
  const journalPath = path.join(dir, "journal");
  if (existsSync(journalPath)) applyRecords(readFileSync(journalPath), chunks);
  return chunks;
}

/**
 * The open journal of one volume's cache. Appends are synchronous writes (no fsync: a FLUSH
 * fsyncs); `compact` folds the state into the snapshot and empties the journal.
 */
export class CacheJournal {
  private fd: number;
  private position: number;
  private records = 0;
  /** Bumped by every append and compaction: a FLUSH syncs the journal only when it moved. */
  private changeCount = 0;
  private readonly record = Buffer.alloc(RECORD_SIZE);

  private constructor(
    private readonly dir: string,
    fd: number,
    position: number,
  ) {
    this.fd = fd;
    this.position = position;
  }

  /** Replays snapshot + journal (a torn or corrupt tail is cut off) and opens it for appending. */
  static open(dir: string): { journal: CacheJournal; chunks: Map<number, ReplayedChunk> } {
    const chunks = new Map<number, ReplayedChunk>();
    const statePath = path.join(dir, "state");
    if (existsSync(statePath)) {
      const state = readFileSync(statePath);
      if (state.length < 8 || state.readUInt32BE(0) !== STATE_MAGIC || state.readUInt32BE(4) !== crc32(state.subarray(8))) {
        throw new StorageError("EIO", `cache state ${statePath} is corrupt`);
      }
      const body = state.subarray(8);
      if (applyRecords(body, chunks) !== body.length) throw new StorageError("EIO", `cache state ${statePath} has a bad record`);
    }
    const fd = openSync(path.join(dir, "journal"), "a+");
    const size = fstatSync(fd).size;
    const data = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, data, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    const valid = applyRecords(data.subarray(0, read), chunks);
    closeSync(fd);
    // Reopen without O_APPEND so positional writes land where we say (after the valid prefix).
    const writable = openSync(path.join(dir, "journal"), "r+");
    if (valid !== size) ftruncateSync(writable, valid);
    const journal = new CacheJournal(dir, writable, valid);
    journal.records = valid / RECORD_SIZE;
    return { journal, chunks };
  }

  /** Appends one record. Throws (ENOSPC, ...) without advancing: the next append overwrites a torn one. */
  append(kind: JournalRecordKind, index: number, value = 0): void {
    encodeRecord(this.record, 0, kind, index, value);
    let written = 0;
    while (written < RECORD_SIZE) written += writeSync(this.fd, this.record, written, RECORD_SIZE - written, this.position + written);
    this.position += RECORD_SIZE;
    this.records++;
    this.changeCount++;
  }

  /** How many times the journal changed since it was opened. */
  get changes(): number {
    return this.changeCount;
  }

  get recordCount(): number {
    return this.records;
  }

  fsyncNow(): void {
    fsyncSync(this.fd);
  }

  get descriptor(): number {
    return this.fd;
  }

  /**
   * Writes `chunks` as the new snapshot (temp file, fsync, rename, directory fsync), then empties
   * the journal. A crash anywhere in between replays to the same state (records are idempotent).
   */
  compact(chunks: Iterable<[number, ReplayedChunk]>): void {
    const list = [...chunks];
    const state = Buffer.alloc(8 + list.length * RECORD_SIZE);
    let offset = 8;
    for (const [index, chunk] of list) {
      if (!chunk.dirty) encodeRecord(state, offset, KIND_CLEAN, index, chunk.generation);
      else if (chunk.landing !== undefined) encodeRecord(state, offset, KIND_LANDING, index, chunk.landing);
      else encodeRecord(state, offset, KIND_DIRTY, index, 0);
      offset += RECORD_SIZE;
    }
    state.writeUInt32BE(STATE_MAGIC, 0);
    state.writeUInt32BE(crc32(state.subarray(8)), 4);
    writeFileDurably(path.join(this.dir, "state"), state);
    ftruncateSync(this.fd, 0);
    this.position = 0;
    this.records = 0;
    this.changeCount++;
  }

  close(): void {
    if (this.fd < 0) return;
    closePinned(this.fd); // a FLUSH's fdatasync may still run on it
    this.fd = -1;
  }
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `file` with `data` atomically and durably: a temp file, fsync, rename, directory fsync. */
export function writeFileDurably(file: string, data: Buffer): void {
  const temp = `${file}.tmp`;
  const fd = openSync(temp, "w");
  try {
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written, written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  fsyncDirectory(path.dirname(file));
}
