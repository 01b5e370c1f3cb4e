/**
 * Worker threads that seal and open chunk objects (zstd, AES-256-GCM, and the SHA-256 S3 signs), so
 * that work and its buffers' garbage stay off the event loop that answers NBD requests. One pool per
 * gateway; each volume's codec registers its key; requests go to the least busy worker. A worker
 * that dies fails its requests with StorageError("EIO") and is replaced, keys and all; after close()
 * calls fail with ESHUTDOWN. Idle workers do not keep the process alive; none start before the first key.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { KeyObject } from "node:crypto";
import { StorageError } from "../errors";
import type { EncodedChunk } from "../volume/chunk-codec";
import type { Compression } from "./compression";
import type { WorkerReply, WorkerRequest } from "./codec-protocol";
import { HEADER_BYTES, TAG_BYTES } from "./object-header";
import type { Place } from "./seal";
import { SharedBufferPool } from "./shared-buffers";

const WORKER_URL = new URL("./codec-worker.mjs", import.meta.url);

export interface CodecPoolOptions {
  /** Worker threads (default: defaultCodecThreads()). */
  size?: number;
}

/** A sealed chunk from the pool: an EncodedChunk whose body is a Buffer. */
export type SealedBody = EncodedChunk & { body: Buffer };

/** The machine's parallelism, 1 to 4: more threads than cores only compete with the event loop. */
export function defaultCodecThreads(): number {
  return Math.min(4, availableParallelism());
}

interface Pending {
  resolve(reply: Extract<WorkerReply, { ok: true }>): void;
  reject(error: unknown): void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

export class CodecPool {
  readonly size: number;
  readonly #slots: Slot[] = [];
  readonly #keys = new Map<number, { key: KeyObject; compression: Compression }>();
  #nextKeyId = 0;
  #nextRequestId = 0;
  #closed = false;
  /** Sealed bodies are written into these (see seal). */
  readonly #outputs = new SharedBufferPool({ maxFree: 64 });

  constructor(options: CodecPoolOptions = {}) {
    this.size = Math.max(1, Math.floor(options.size ?? defaultCodecThreads()));
  }

  /** Workers with at least one request in flight, and requests in flight in all (for metrics). */
  load(): { busyWorkers: number; requests: number } {
    let busyWorkers = 0;
    let requests = 0;
    for (const slot of this.#slots) {
      if (slot.pending.size > 0) busyWorkers++;
      requests += slot.pending.size;
    }
    return { busyWorkers, requests };
  }

  /** Makes `key` usable by every worker; returns the id to seal and open with. */
  registerKey(key: KeyObject, compression: Compression): number {
    this.#assertOpen();
    // The threads start with the first key: each holds memory of its own, and a gateway with no
    // volume open needs none.
    if (this.#slots.length === 0) for (let i = 0; i < this.size; i++) this.#slots.push(this.#spawn());
    const keyId = ++this.#nextKeyId;
    this.#keys.set(keyId, { key, compression });
    for (const slot of this.#slots) this.#post(slot, { type: "key", keyId, key, compression });
    return keyId;
  }

  /** Forgets a key in every worker (its volume closed). */
  dropKey(keyId: number): void {
    if (!this.#keys.delete(keyId) || this.#closed) return;
    for (const slot of this.#slots) this.#post(slot, { type: "drop", keyId });
  }

  /**
   * Seals `plain` for `place`: copied, or read in place when it is shared memory (left unchanged
   * either way). The body is written into reused shared memory; `release()` it once uploaded.
   */
  async seal(keyId: number, plain: Buffer, place: Place, sha256 = true): Promise<SealedBody> {
    const output = this.#outputs.acquire(plain.length + HEADER_BYTES + TAG_BYTES);
    let reply: Extract<WorkerReply, { ok: true }>;
    try {
      reply = await this.#request({ type: "seal", id: 0, keyId, data: plain, place, output, sha256 });
    } catch (error) {
      this.#outputs.release(output); // the worker is done with it: it answered, died or was stopped
      throw error;
    }
    if (reply.written === undefined) {
      this.#outputs.release(output);
      return { body: asBuffer(reply.data!), sha256: reply.sha256 };
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#outputs.release(output);
    };
    return { body: output.subarray(0, reply.written), sha256: reply.sha256, release };
  }

  /**
   * Opens a sealed object (copied) for `place`; StorageError("EIO") when it does not verify. With
   * `output` (shared memory) large enough, the plain bytes are written there and a view of it comes
   * back: the worker's own buffer stays in its thread, so the event loop's heap sees no new memory
   * per chunk (fresh megabytes drive major GCs: docs/performance.md).
   */
  async open(keyId: number, stored: Buffer, place: Place, output?: Buffer): Promise<Buffer> {
    const shared = output !== undefined && output.buffer instanceof SharedArrayBuffer ? output : undefined;
    const reply = await this.#request({ type: "open", id: 0, keyId, data: stored, place, output: shared });
    if (reply.written !== undefined) return shared!.subarray(0, reply.written);
    return asBuffer(reply.data!);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const slots = this.#slots.splice(0);
    for (const slot of slots) this.#failAll(slot, new StorageError("ESHUTDOWN", "the codec pool is closed"));
    await Promise.all(slots.map((slot) => slot.worker.terminate()));
  }

  /** Tests: makes one worker exit with its requests in flight; resolves once its replacement is in place. */
  crashWorkerForTest(index = 0): Promise<void> {
    const slot = this.#slots[index]!;
    const replaced = new Promise<void>((resolve) => slot.worker.once("exit", () => resolve()));
    this.#post(slot, { type: "exit" });
    return replaced;
  }

  #request(request: Extract<WorkerRequest, { type: "seal" | "open" }>): Promise<Extract<WorkerReply, { ok: true }>> {
    if (this.#closed) return Promise.reject(new StorageError("ESHUTDOWN", "the codec pool is closed"));
    if (!this.#keys.has(request.keyId)) return Promise.reject(new StorageError("EINVAL", `no key ${request.keyId} in the codec pool`));
    const slot = this.#slots.reduce((best, candidate) => (candidate.pending.size < best.pending.size ? candidate : best));
    const id = ++this.#nextRequestId;
    // Shared memory (SharedBufferPool) is read in place. Anything else is copied into memory the
    // worker then owns: moving an ArrayBuffer is cheap, while structured-cloning a Buffer serialises
    // it through a growing buffer on the event loop.
    const shared = request.data.buffer instanceof SharedArrayBuffer;
    const data = shared ? request.data : new Uint8Array(request.data);
    return new Promise((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      this.#post(slot, { ...request, id, data }, shared ? [] : [data.buffer as ArrayBuffer]);
    });
  }

  #post(slot: Slot, message: WorkerRequest, transfer: ArrayBuffer[] = []): void {
    slot.worker.postMessage(message, transfer);
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_URL);
    const slot: Slot = { worker, pending: new Map() };
    worker.unref();
    worker.on("message", (reply: WorkerReply) => {
      const pending = slot.pending.get(reply.id);
      if (pending === undefined) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) worker.unref();
      if (reply.ok) pending.resolve(reply);
      else pending.reject(new StorageError(reply.code, reply.message));
    });
    worker.on("error", (error) => this.#replace(slot, error));
    worker.on("exit", (code) => this.#replace(slot, new Error(`exited with code ${code}`)));
    for (const [keyId, { key, compression }] of this.#keys) this.#post(slot, { type: "key", keyId, key, compression });
    return slot;
  }

  /** A worker died: fail its requests and put a new worker in its place. */
  #replace(slot: Slot, cause: unknown): void {
    const at = this.#slots.indexOf(slot);
    if (at < 0) return; // already replaced (error and exit both fire), or the pool is closed
    this.#failAll(slot, new StorageError("EIO", `a codec worker died: ${cause instanceof Error ? cause.message : String(cause)}`, { cause }));
    this.#slots[at] = this.#spawn();
  }

  #failAll(slot: Slot, error: StorageError): void {
    const pending = [...slot.pending.values()];
    slot.pending.clear();
    for (const entry of pending) entry.reject(error);
  }

  #assertOpen(): void {
    if (this.#closed) throw new StorageError("ESHUTDOWN", "the codec pool is closed");
  }
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
