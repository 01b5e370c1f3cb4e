/**
 * Reusable chunk buffers whose memory is page-aligned, so the disk cache can write them with
 * O_DIRECT, and shared, so the codec workers decode into them in place. JavaScript cannot ask for
 * aligned memory, but V8 maps a shared WebAssembly.Memory whole (the test guards this): one such slab,
 * reserved up front and costing RAM only for slots used, is carved into slots. When every slot is
 * lent the pool hands out a plain SharedArrayBuffer: correct, only not aligned (`isPageAligned`).
 */

import { constants as fsConstants } from "node:fs";
import { assertStillPoisoned, BufferPoolMisuse, poison, type BufferPool, type BufferPoolOptions } from "../util/buffer-pool";

/** Bytes of one slab; its slots are `capacity` each (at least one slot, however large). */
const SLAB_BYTES = 96 * 1024 * 1024;
const WASM_PAGE = 64 * 1024;
/** Alignment O_DIRECT may demand of address and length (the logical block size is at most this). */
export const DIRECT_IO_ALIGNMENT = 4096;

/** Node's WebAssembly global (the project's TypeScript libs do not declare it). */
const wasm = (
  globalThis as unknown as { WebAssembly: { Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } } }
).WebAssembly;

/** Absent where the platform has no O_DIRECT (then every cache write and fill is buffered). */
export const O_DIRECT: number | undefined = fsConstants.O_DIRECT;

/** `pages` x 64 KiB of shared memory whose first byte is page-aligned (V8 maps a WebAssembly.Memory whole). */
function alignedMemory(pages: number): SharedArrayBuffer {
  return new wasm.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
}

/** One page-aligned buffer of `bytes` (a multiple of 64 KiB), outside any pool: a bounce buffer for O_DIRECT. */
export function pageAlignedBuffer(bytes: number): Buffer {
  return Buffer.from(alignedMemory(Math.ceil(bytes / WASM_PAGE)), 0, bytes);
}

/** Slab memories, to tell an aligned buffer from a plain one. */
const slabs = new WeakSet<SharedArrayBuffer>();

/** True when `buffer`'s bytes start on a page and its length is whole pages: an O_DIRECT write can take it. */
export function isPageAligned(buffer: Buffer): boolean {
  const memory = buffer.buffer;
  return memory instanceof SharedArrayBuffer && slabs.has(memory) && buffer.byteOffset % DIRECT_IO_ALIGNMENT === 0 && buffer.length % DIRECT_IO_ALIGNMENT === 0;
}

interface Slab {
  readonly memory: SharedArrayBuffer;
  readonly capacity: number;
  /** Slot offsets free for use, most recently released last (reused first: its pages are warm). */
  readonly free: number[];
  /** Slot offsets lent out. */
  readonly lent: Set<number>;
  /** Debug mode: slot offsets released (poisoned) and not lent since. */
  readonly released: Set<number>;
}

export class DirectIoBufferPool implements BufferPool {
  /** One slab per capacity, made on first use; null where one could not be made. */
  readonly #slabs = new Map<number, Slab | null>();
  readonly #debug: boolean;

  constructor(options: BufferPoolOptions = {}) {
    this.#debug = options.debug === true;
  }

  /** A buffer of exactly `length` bytes (contents undefined), page-aligned while the slab has room. */
  acquire(length: number): Buffer {
    const capacity = Math.max(WASM_PAGE, Math.ceil(length / WASM_PAGE) * WASM_PAGE);
    const slab = this.#slab(capacity);
    const offset = slab?.free.pop();
    if (slab === undefined || slab === null || offset === undefined) return Buffer.from(new SharedArrayBuffer(length));
    slab.lent.add(offset);
    const buffer = Buffer.from(slab.memory, offset, length);
    if (this.#debug && slab.released.delete(offset)) assertStillPoisoned(new Uint8Array(slab.memory, offset, slab.capacity), "DirectIoBufferPool");
    return buffer;
  }

  /** Hands a slot back; anything else (a plain fallback buffer, a second release) is ignored. */
  release(buffer: Buffer | null | undefined): void {
    if (buffer === null || buffer === undefined) return;
    const memory = buffer.buffer;
    if (!(memory instanceof SharedArrayBuffer) || !slabs.has(memory)) return;
    for (const slab of this.#slabs.values()) {
      if (slab === null || slab.memory !== memory) continue;
      if (!slab.lent.delete(buffer.byteOffset)) {
        if (this.#debug && slab.released.has(buffer.byteOffset)) throw new BufferPoolMisuse("DirectIoBufferPool: a buffer was released twice");
        continue;
      }
      if (this.#debug) {
        poison(new Uint8Array(slab.memory, buffer.byteOffset, slab.capacity));
        slab.released.add(buffer.byteOffset);
      }
      slab.free.push(buffer.byteOffset);
      return;
    }
  }

  /** Slots lent out now (tests). */
  get lentCount(): number {
    let count = 0;
    for (const slab of this.#slabs.values()) count += slab?.lent.size ?? 0;
    return count;
  }

  #slab(capacity: number): Slab | null | undefined {
    let slab = this.#slabs.get(capacity);
    if (slab !== undefined) return slab;
    const slots = Math.max(1, Math.floor(SLAB_BYTES / capacity));
    const pages = (slots * capacity) / WASM_PAGE;
    try {
      const memory = alignedMemory(pages);
      slabs.add(memory);
      // Popped from the end: slot 0 first.
      const free = Array.from({ length: slots }, (_, slot) => (slots - 1 - slot) * capacity);
      slab = { memory, capacity, free, lent: new Set(), released: new Set() };
    } catch {
      slab = null; // no address space for it (a ulimit -v): plain buffers, buffered fills
    }
    this.#slabs.set(capacity, slab);
    return slab;
  }
}
