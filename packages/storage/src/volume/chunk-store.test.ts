import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SealedCodec } from "../codec/sealed-codec";
import { MemoryObjectStore } from "../object-store/memory-store";
import type { ObjectStore, PutOptions } from "../object-store/object-store";
import { RetryingObjectStore } from "../object-store/retrying-store";
import { ChunkStore } from "./chunk-store";

/** A memory store that says whether it signs bodies and records the hash each put was given. */
class RecordingStore extends MemoryObjectStore {
  readonly hashes: Array<string | undefined> = [];
  constructor(override readonly signsPayload: boolean) {
    super();
  }
  override async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    this.hashes.push(options?.sha256);
    return super.put(key, body, options);
  }
}

describe("ChunkStore", () => {
  const codec = new SealedCodec({ dataKey: randomBytes(32) });

  it("hands a signing store the body's SHA-256 and spares the others the hashing, through a retry layer too", async () => {
    for (const signs of [true, false]) {
      const inner = new RecordingStore(signs);
      const store: ObjectStore = new RetryingObjectStore(inner);
      const chunks = new ChunkStore({ store, volumeId: "vol_hash", codec });
      const plain = randomBytes(64 * 1024);
      await chunks.save(3, 65_537, plain);
      const body = await inner.get(chunks.key(3, 65_537));
      expect(inner.hashes).toEqual([signs ? createHash("sha256").update(body!).digest("hex") : undefined]);
      expect(await chunks.load(3, 65_537, plain.length)).toEqual(plain);
    }
  });
});
