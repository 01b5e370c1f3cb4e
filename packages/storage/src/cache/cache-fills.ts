/**
 * Fetched clean chunks on their way into the disk cache: written off the event loop into a spare
 * file (page-aligned ones with O_DIRECT after a hold, so a sequential reader is served from memory
 * first; such a chunk lands cold), then renamed into place and journalled clean; until then
 * `filling(index)` serves readers. Invariant: at most one fill per chunk, only while the chunk has
 * no entry; whatever creates an entry cancels the fill first, so a fill's bytes are always current.
 */
import { closeSync, constants as fsConstants } from "node:fs";
import { rm } from "node:fs/promises";
import { BACKGROUND_TIMER, systemClock, type Clock, type ClockTimer } from "../util/clock";
import type { CacheBudget } from "./cache-budget";
import { isPageAligned, O_DIRECT } from "./direct-io-buffers";
import { openFile, writeFileFully, type FillWriter } from "./fill-writer";
import type { SpareFiles } from "./spare-files";

/** What the fills need of the cache they feed. */
export interface FillHost {
  /** The chunk has an entry: a fill must not start for it. */
  hasEntry(index: number): boolean;
  /** Renames a written fill's file into place and journals it clean; false: it must be discarded. */
  placeFill(index: number, generation: number, from: string): boolean;
  /** Makes the entry of a placed fill (called after its reservation left the budget); fd is -1 for a direct one. */
  enterFill(landed: { index: number; generation: number; fd: number; bytes: number; cold: boolean }): void;
}

export interface CacheFillsOptions {
  budget: CacheBudget;
  spares: SpareFiles;
  host: FillHost;
  /** Bytes of fetched chunks held back or being written (default 96 MiB, at least one chunk). */
  maxFillingBytes?: number;
  /** Writes a fill's file off the event loop (default: fs.write in the thread pool; tests hold it). */
  fillWriter?: FillWriter;
  /** O_DIRECT for page-aligned fills (default true where the file system takes it). */
  directFills?: boolean;
  /** Bytes of direct fills held back before the oldest is written (default 32 MiB). */
  fillDelayBytes?: number;
  clock?: Clock;
}

/** A fetched chunk on its way into the cache; `data` serves readers until its file is in place. */
interface PendingFill {
  readonly generation: number;
  readonly data: Buffer;
  /** Written with O_DIRECT (its bytes are page-aligned), once held back long enough. */
  readonly direct: boolean;
  /** Its file is being written (a direct fill waits for that; others start at once). */
  started: boolean;
  /** Resolves once the fill is in place or discarded and its file and descriptor are dealt with. */
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

const RESOLVED: Promise<void> = Promise.resolve();
/**
 * Fills in flight hold their fetched buffers: this bounds that memory (and their descriptors,
 * which are outside the budget's fd LRU until the fill lands) when the disk is slower than the store.
 */
const DEFAULT_MAX_FILLING = 96 * 1024 * 1024;
/**
 * Held back direct fills: more than the read-ahead keeps in flight, well under DEFAULT_MAX_FILLING
 * so that the ones being written still fit beside them (a fill refused for room is fetched again
 * by the reader that wanted it).
 */
const DEFAULT_FILL_DELAY = 32 * 1024 * 1024;
/** Held fills are written anyway once no new fill came for this long (a reader stopped). */
export const FILL_HOLD_MS = 2000;

export class CacheFills {
  readonly #budget: CacheBudget;
  readonly #spares: SpareFiles;
  readonly #host: FillHost;
  readonly #clock: Clock;
  readonly #maxFillingBytes: number;
  readonly #fillWriter: FillWriter;
  readonly #fillDelayBytes: number;
  /** Cleared for good by the first refusal of O_DIRECT (a file system without it). */
  #direct: boolean;
  readonly #fills = new Map<number, PendingFill>();
  /** Every fill's settled promise, including fills cancelled or abandoned by close. */
  readonly #inFlight = new Set<Promise<void>>();
  /** Bytes of `fills`, reserved in the budget's cached bytes from the start. */
  #fillingBytes = 0;
  /** Bytes of direct fills not started yet. */
  #delayedBytes = 0;
  #lastHeldAt = 0;
  #holdTimer: ClockTimer | undefined;
  #closed = false;

  constructor(options: CacheFillsOptions) {
    this.#budget = options.budget;
    this.#spares = options.spares;
    this.#host = options.host;
    this.#clock = options.clock ?? systemClock;
    this.#maxFillingBytes = options.maxFillingBytes ?? DEFAULT_MAX_FILLING;
    this.#fillWriter = options.fillWriter ?? writeFileFully;
    this.#direct = options.directFills !== false && O_DIRECT !== undefined;
    this.#fillDelayBytes = options.fillDelayBytes ?? DEFAULT_FILL_DELAY;
  }

  /**
   * Starts caching a fetched clean chunk; returns whether it started. Best effort: nothing is
   * cached when the disk refuses (ENOSPC included), when a write or trim reaches the chunk first,
   * when the cache closes meanwhile, or when `maxFillingBytes` are in flight already. The bytes
   * count toward the budget from the start: eviction makes room before the write, and a fill that
   * would still leave the budget past its target (dirty data, other fills) is skipped.
   */
  start(index: number, generation: number, data: Buffer): boolean {
    if (this.#closed || this.#host.hasEntry(index) || this.#fills.has(index)) return false;
    if (this.#fillingBytes > 0 && this.#fillingBytes + data.length > this.#maxFillingBytes) return false;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const fill: PendingFill = { generation, data, direct: this.#direct && isPageAligned(data), started: false, settled, settle };
    this.#fills.set(index, fill);
    this.#fillingBytes += data.length;
    this.#budget.addCached(data.length);
    this.#budget.evictToTarget();
    if (this.#budget.cachedBytes > this.#budget.targetBytes) {
      // Fills cannot be evicted: one that does not fit beside the dirty data and other fills is skipped.
      this.cancel(index, fill);
      return false;
    }
    this.#inFlight.add(settled);
    void settled.then(() => this.#inFlight.delete(settled));
    if (!fill.direct) {
      this.#startFill(index, fill);
    } else {
      this.#delayedBytes += data.length;
      this.#startDelayed(this.#fillDelayBytes);
      this.#lastHeldAt = this.#clock.now();
      this.#holdTimer ??= this.#clock.setTimer(() => this.#heldTooLong(), FILL_HOLD_MS, BACKGROUND_TIMER);
    }
    return true;
  }

  /** The content of a chunk whose fill is in flight (always its current content), if any. */
  filling(index: number): Buffer | undefined {
    return this.#fills.get(index)?.data;
  }

  /** Resolves once the fill of `index` (if any) has landed or been discarded; a held-back one starts now. */
  settled(index: number): Promise<void> {
    const fill = this.#fills.get(index);
    if (fill === undefined) return RESOLVED;
    if (!fill.started) this.#startFill(index, fill);
    return fill.settled;
  }

  /** Starts the fills held back, then resolves once every fill is done with its file, even those close abandoned. */
  async allSettled(): Promise<void> {
    this.startHeld();
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /** Writes every fill still held back. */
  startHeld(): void {
    this.#startDelayed(0);
  }

  /** Forgets the chunk's fill (or only `which`, if given): its reservation leaves the budget. */
  cancel(index: number, which?: PendingFill): void {
    const fill = this.#fills.get(index);
    if (fill === undefined || (which !== undefined && fill !== which)) return;
    this.#fills.delete(index);
    this.#fillingBytes -= fill.data.length;
    this.#budget.removeCached(fill.data.length);
    if (!fill.started) {
      // Never written: nothing on disk to deal with.
      if (fill.direct) this.#delayedBytes -= fill.data.length;
      fill.started = true;
      fill.settle();
    }
  }

  /** Abandons every fill: those still writing close their descriptor and delete their own file. */
  close(): void {
    this.#closed = true;
    this.#holdTimer?.cancel();
    this.#holdTimer = undefined;
    for (const index of [...this.#fills.keys()]) this.cancel(index);
  }

  #heldTooLong(): void {
    this.#holdTimer = undefined;
    if (this.#closed || this.#delayedBytes === 0) return;
    const waited = this.#clock.now() - this.#lastHeldAt;
    if (waited >= FILL_HOLD_MS) this.startHeld();
    else this.#holdTimer = this.#clock.setTimer(() => this.#heldTooLong(), FILL_HOLD_MS - waited, BACKGROUND_TIMER);
  }

  /** Starts the oldest delayed fills until at most `keepBytes` of them wait. */
  #startDelayed(keepBytes: number): void {
    if (this.#delayedBytes <= keepBytes) return;
    for (const [index, fill] of this.#fills) {
      if (fill.started) continue;
      this.#startFill(index, fill);
      if (this.#delayedBytes <= keepBytes) return;
    }
  }

  #startFill(index: number, fill: PendingFill): void {
    fill.started = true;
    if (fill.direct) this.#delayedBytes -= fill.data.length;
    void this.#write(index, fill, this.#spares.claim()).then(fill.settle);
  }

  /** Opens (in the thread pool too: a synchronous create contends with the pool's writes), writes, then lands or discards the fill. */
  async #write(index: number, fill: PendingFill, file: { path: string; exists: boolean }): Promise<void> {
    let fd = -1;
    let written = false;
    // Decided here, not at start: the first refusal of O_DIRECT turns it off for fills held meanwhile.
    const direct = fill.direct && this.#direct;
    try {
      if (direct) {
        written = await this.#writeDirect(index, fill, file);
      } else {
        fd = await openFile(file.path, file.exists ? "r+" : "w+");
        if (this.#fills.get(index) === fill) {
          await this.#fillWriter(fd, fill.data);
          written = true;
        }
      }
    } catch {
      // ENOSPC or another refusal: the chunk stays uncached; its reader had the data already.
    }
    if (written && this.#fills.get(index) === fill && this.#land(index, fill, file.path, fd, direct)) return;
    this.cancel(index, fill);
    if (fd >= 0) closeSync(fd);
    // After close the directory may belong to a new instance, but this name is ours alone.
    await rm(file.path, { force: true }).catch(() => {});
  }

  #land(index: number, fill: PendingFill, from: string, fd: number, cold: boolean): boolean {
    if (!this.#host.placeFill(index, fill.generation, from)) return false;
    this.cancel(index, fill);
    this.#host.enterFill({ index, generation: fill.generation, fd, bytes: fill.data.length, cold });
    return true;
  }

  /**
   * Writes a direct fill through an O_DIRECT descriptor, which is closed: the entry lands cold and
   * without a descriptor (the hot path's reads and writes are not page-aligned, and warming opens
   * the file when a reader comes back). Returns whether the file was written; false when the fill
   * was cancelled meanwhile. The first EINVAL (a file system without O_DIRECT, or alignment it will
   * not take) turns direct fills off for this cache: this fill is then skipped.
   */
  async #writeDirect(index: number, fill: PendingFill, file: { path: string; exists: boolean }): Promise<boolean> {
    const flags = fsConstants.O_RDWR | O_DIRECT! | (file.exists ? 0 : fsConstants.O_CREAT | fsConstants.O_TRUNC);
    let direct = -1;
    try {
      direct = await openFile(file.path, flags);
      if (this.#fills.get(index) !== fill) return false;
      await this.#fillWriter(direct, fill.data);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EINVAL") this.#direct = false;
      throw error;
    } finally {
      if (direct >= 0) closeSync(direct);
    }
  }
}
