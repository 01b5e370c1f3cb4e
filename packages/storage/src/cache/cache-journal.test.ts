import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CacheJournal, KIND_CLEAN, KIND_DIRTY, KIND_DROP, KIND_LANDING, RECORD_SIZE } from "./cache-journal";

describe("CacheJournal", () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("replays records, ignores a torn last record and appends after the valid prefix", () => {
    dir = mkdtempSync(path.join(tmpdir(), "stratus-journal-"));
    const { journal } = CacheJournal.open(dir);
    journal.append(KIND_CLEAN, 1, 65_537);
    journal.append(KIND_DIRTY, 2);
    journal.append(KIND_CLEAN, 2 ** 40, 2 ** 50 + 3); // past 32 bits
    journal.append(KIND_DIRTY, 3);
    journal.append(KIND_DROP, 3);
    journal.close();
    appendFileSync(path.join(dir, "journal"), Buffer.alloc(RECORD_SIZE - 5, 7)); // torn by a crash

    const reopened = CacheJournal.open(dir);
    expect([...reopened.chunks]).toEqual([
      [1, { dirty: false, generation: 65_537 }],
      [2, { dirty: true }],
      [2 ** 40, { dirty: false, generation: 2 ** 50 + 3 }],
    ]);
    reopened.journal.append(KIND_DIRTY, 1);
    reopened.journal.close();
    expect(readFileSync(path.join(dir, "journal")).length).toBe(6 * RECORD_SIZE);
    expect(CacheJournal.open(dir).chunks.get(1)).toEqual({ dirty: true });
  });

  it("stops at a record whose CRC does not match", () => {
    dir = mkdtempSync(path.join(tmpdir(), "stratus-journal-"));
    const { journal } = CacheJournal.open(dir);
    journal.append(KIND_DIRTY, 1);
    journal.append(KIND_DIRTY, 2);
    journal.append(KIND_DIRTY, 3);
    journal.close();
    const bytes = readFileSync(path.join(dir, "journal"));
    bytes[RECORD_SIZE + 13] = bytes[RECORD_SIZE + 13]! ^ 1; // flip a bit in the second record
    writeFileSync(path.join(dir, "journal"), bytes);
    const { chunks, journal: reopened } = CacheJournal.open(dir);
    reopened.close();
    expect([...chunks.keys()]).toEqual([1]);
  });

  it("compacts into the snapshot; replaying snapshot plus already-folded records gives the same state", () => {
    dir = mkdtempSync(path.join(tmpdir(), "stratus-journal-"));
    const { journal } = CacheJournal.open(dir);
    for (let i = 0; i < 6; i++) journal.append(KIND_CLEAN, i, i + 100);
    journal.append(KIND_DIRTY, 4);
    journal.append(KIND_DROP, 5);
    const folded = readFileSync(path.join(dir, "journal"));
    const state = CacheJournal.open(dir);
    state.journal.close();
    journal.compact(state.chunks);
    expect(journal.recordCount).toBe(0);
    expect(readFileSync(path.join(dir, "journal")).length).toBe(0);
    journal.append(KIND_DROP, 0);
    journal.close();
    const expected = [...state.chunks].filter(([index]) => index !== 0);
    expect([...CacheJournal.open(dir).chunks]).toEqual(expected);
    // A crash between the snapshot's rename and the journal's truncation: the folded records replay again.
    writeFileSync(path.join(dir, "journal"), folded);
    expect([...CacheJournal.open(dir).chunks]).toEqual([...state.chunks]);
  });

  it("keeps a chunk landing as a generation through replay and compaction, until it is journalled dirty again", () => {
    dir = mkdtempSync(path.join(tmpdir(), "stratus-journal-"));
    const { journal } = CacheJournal.open(dir);
    journal.append(KIND_DIRTY, 1);
    journal.append(KIND_LANDING, 1, 2 ** 40 + 5);
    journal.append(KIND_DIRTY, 2);
    journal.append(KIND_LANDING, 2, 7);
    journal.append(KIND_DIRTY, 2); // written again after the commit was sent
    const state = CacheJournal.open(dir);
    state.journal.close();
    expect([...state.chunks]).toEqual([
      [1, { dirty: true, landing: 2 ** 40 + 5 }],
      [2, { dirty: true }],
    ]);
    journal.compact(state.chunks);
    journal.close();
    expect([...CacheJournal.open(dir).chunks]).toEqual([...state.chunks]);
  });

  it("refuses a corrupt snapshot", () => {
    dir = mkdtempSync(path.join(tmpdir(), "stratus-journal-"));
    writeFileSync(path.join(dir, "state"), Buffer.from("not a snapshot"));
    expect(() => CacheJournal.open(dir)).toThrow(/corrupt/);
  });
});
