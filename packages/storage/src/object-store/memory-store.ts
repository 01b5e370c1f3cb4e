import { compareKeys, clampRange, validateListLimit } from "./object-store-helpers";
import type { ByteRange, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from "./object-store";

/**
 * An object store held in a Map, for unit tests and as the reference the conformance suite
 * is checked against. Bodies are copied on the way in and out so callers can reuse buffers.
 */
export class MemoryObjectStore implements ObjectStore {
  readonly signsPayload: boolean = false;
  private readonly objects = new Map<string, Buffer>();

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    this.objects.set(key, Buffer.from(body));
    options?.onBodyReleased?.();
  }

  async get(key: string, range?: ByteRange): Promise<Buffer | undefined> {
    const body = this.objects.get(key);
    if (body === undefined) return undefined;
    const { start, end } = clampRange(body.length, range);
    return Buffer.from(body.subarray(start, end));
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const body = this.objects.get(key);
    return body === undefined ? undefined : { key, size: body.length };
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.objects.delete(key);
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = validateListLimit(options.limit);
    const keys = [...this.objects.keys()]
      .filter((key) => key.startsWith(options.prefix))
      .filter((key) => options.startAfter === undefined || compareKeys(key, options.startAfter) > 0)
      .sort(compareKeys);
    const page = keys.slice(0, limit);
    return {
      objects: page.map((key) => ({ key, size: this.objects.get(key)!.length })),
      truncated: keys.length > limit,
    };
  }

  /** Number of objects held (tests use it to check that nothing leaked). */
  get objectCount(): number {
    return this.objects.size;
  }

  async close(): Promise<void> {}
}
