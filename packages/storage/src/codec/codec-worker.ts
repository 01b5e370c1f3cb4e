/**
 * One codec worker thread (see codec-pool.ts): seals and opens objects with the keys the pool sent
 * it, and hashes sealed bodies for S3's payload signature, so none of that runs on the gateway's
 * event loop. Keys arrive as KeyObjects and stay in this thread's memory only.
 */
import { parentPort } from "node:worker_threads";
import type { KeyObject } from "node:crypto";
import { isStorageError } from "../errors";
import type { Compression } from "./compression";
import { openObject, sealObject, sha256Hex, type Place } from "./seal";
import type { WorkerReply, WorkerRequest } from "./codec-protocol";
import { copyBytes } from "../util/copy-bytes";

const port = parentPort;
if (port === null) throw new Error("codec-worker.ts runs as a worker thread (see codec-pool.ts)");

const keys = new Map<number, { key: KeyObject; compression: Compression }>();

port.on("message", (request: WorkerRequest) => {
  switch (request.type) {
    case "key":
      keys.set(request.keyId, { key: request.key, compression: request.compression });
      return;
    case "drop":
      keys.delete(request.keyId);
      return;
    case "exit":
      process.exit(1); // tests: a worker that dies with work in flight
      return;
    default:
      port.postMessage(...answer(request));
  }
});

function answer(request: Extract<WorkerRequest, { type: "seal" | "open" }>): [WorkerReply, ArrayBuffer[]] {
  try {
    const entry = keys.get(request.keyId);
    if (entry === undefined) throw new Error(`codec worker has no key ${request.keyId}`);
    const input = Buffer.from(request.data.buffer, request.data.byteOffset, request.data.byteLength);
    const place: Place = request.place;
    // Shared output memory is written in place; a body or plain chunk that does not fit comes back
    // as its own buffer, moved rather than copied.
    const output = request.output === undefined ? undefined : Buffer.from(request.output.buffer, request.output.byteOffset, request.output.byteLength);
    const result = request.type === "seal" ? sealObject(entry.key, entry.compression, input, place, output) : openObject(entry.key, input, place, output);
    const sha256 = request.type === "seal" && request.sha256 ? sha256Hex(result) : undefined;
    if (output !== undefined && result.buffer === output.buffer && result.byteOffset === output.byteOffset) {
      return [{ id: request.id, ok: true, written: result.length, sha256 }, []];
    }
    if (output !== undefined && result.length <= output.length) {
      copyBytes(result, output); // opened from zstd: decompressed into zstd's own buffer
      return [{ id: request.id, ok: true, written: result.length, sha256 }, []];
    }
    return [{ id: request.id, ok: true, data: result, sha256 }, transferable(result)];
  } catch (error) {
    const code = isStorageError(error) ? error.code : "EIO";
    return [{ id: request.id, ok: false, code, message: error instanceof Error ? error.message : String(error) }, []];
  }
}

/** Hand a buffer's memory over instead of copying it, unless it shares its ArrayBuffer (Node's small-buffer pool). */
function transferable(buffer: Buffer): ArrayBuffer[] {
  const whole = buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength && buffer.buffer instanceof ArrayBuffer;
  return whole ? [buffer.buffer as ArrayBuffer] : [];
}
