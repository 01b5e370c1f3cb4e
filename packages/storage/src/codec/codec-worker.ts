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
    if (request.type === "seal") {
      const body = sealObject(entry.key, entry.compression, input, place);
      const sha256 = request.sha256 ? sha256Hex(body) : undefined;
      if (request.output !== undefined && body.length <= request.output.length) {
        request.output.set(body);
        return [{ id: request.id, ok: true, written: body.length, sha256 }, []];
      }
      return [{ id: request.id, ok: true, data: body, sha256 }, transferable(body)];
    }
    const plain = openObject(entry.key, input, place);
    if (request.output !== undefined && plain.length <= request.output.length) {
      request.output.set(plain);
      return [{ id: request.id, ok: true, written: plain.length }, []];
    }
    return [{ id: request.id, ok: true, data: plain }, transferable(plain)];
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
