/** Messages between CodecPool and its worker threads (codec-worker.ts). */
import type { KeyObject } from "node:crypto";
import type { StorageErrorCode } from "../errors";
import type { Compression } from "./compression";
import type { Place } from "./seal";

export type WorkerRequest =
  | { type: "key"; keyId: number; key: KeyObject; compression: Compression }
  | { type: "drop"; keyId: number }
  /**
   * `output`: shared memory the sealed body is written into when it fits (else it comes back as `data`).
   * `sha256`: also hash the body (for a store that signs it).
   */
  | { type: "seal"; id: number; keyId: number; data: Uint8Array; place: Place; output?: Uint8Array; sha256: boolean }
  /** `output`: shared memory the plain bytes are written into when they fit (else they come back as `data`). */
  | { type: "open"; id: number; keyId: number; data: Uint8Array; place: Place; output?: Uint8Array }
  /** Tests only: the worker exits at once, with whatever it had in flight. */
  | { type: "exit" };

export type WorkerReply =
  { id: number; ok: true; data?: Uint8Array; written?: number; sha256?: string } | { id: number; ok: false; code: StorageErrorCode; message: string };
