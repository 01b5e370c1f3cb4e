/**
 * Stores and loads one chunk generation's bytes through the codec. Knows keys and codecs, not
 * caching or commit order: that is the volume's job.
 */
import { StorageError, asEio } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import { ChunkBuffers } from "./chunk-buffers";
import { identityCodec, type ChunkCodec, type EncodedChunk } from "./chunk-codec";
import { chunkKey } from "./chunk-layout";

export interface ChunkStoreOptions {
  store: ObjectStore;
  volumeId: string;
  codec?: ChunkCodec;
  /** The pools downloads and decoded chunks come from (default: a set of its own). */
  buffers?: ChunkBuffers;
  /** A clone's (or a snapshot's) chunks that are an ancestor's objects: whose they are, and their codec. */
  owners?: ChunkOwners;
}

/**
 * Where a chunk generation lives when it is not the volume's own object: a clone reads the chunks it
 * has not rewritten from its ancestor's prefix, sealed with the ancestor's key (docs/snapshots-design.md).
 */
export interface ChunkOwners {
  /** The ancestor volume that owns (index, generation), or undefined: the volume's own. */
  ownerOf(index: number, generation: number): string | undefined;
  /** The codec that opens that ancestor's objects; throws when its key is not known. */
  codecFor(owner: string): ChunkCodec;
}

export class ChunkStore {
  readonly store: ObjectStore;
  readonly volumeId: string;
  private readonly codec: ChunkCodec;
  private readonly owners: ChunkOwners | undefined;
  readonly buffers: ChunkBuffers;
  /** Downloaded objects land in shared memory the codec workers decode from (no copy to them). */
  private readonly receiveInto = (length: number): Buffer => this.buffers.download.acquire(length);

  constructor(options: ChunkStoreOptions) {
    this.store = options.store;
    this.volumeId = options.volumeId;
    this.codec = options.codec ?? identityCodec;
    this.buffers = options.buffers ?? new ChunkBuffers();
    this.owners = options.owners;
  }

  key(index: number, generation: number): string {
    return chunkKey(this.volumeId, index, generation);
  }

  /**
   * Uploads `plain` as a new object; returns the bytes it occupies in the store. The caller may reuse
   * `plain` once this settles: a codec that returns it as the body (identity) uploads a copy, since a
   * put the retry layer abandoned as stalled may still be reading its body.
   */
  async save(index: number, generation: number, plain: Buffer): Promise<number> {
    const context = { volumeId: this.volumeId, index, generation };
    const encoded: EncodedChunk = this.codec.encodeForUpload
      ? await this.codec.encodeForUpload(plain, context, { sha256: this.store.signsPayload !== false })
      : { body: await this.codec.encode(plain, context) };
    const body = encoded.body.buffer === plain.buffer ? Buffer.from(encoded.body) : encoded.body;
    // The codec's body memory goes back to it once the store no longer reads it (abandoned attempts included).
    await this.store
      .put(this.key(index, generation), body, { sha256: encoded.sha256, onBodyReleased: encoded.release?.bind(encoded) })
      .catch((error: unknown) => {
        throw asEio(error, `upload of chunk ${index} generation ${generation}`);
      });
    return body.length;
  }

  /**
   * The chunk's plain bytes (exactly `length` of them), or undefined when the object is missing.
   * They may be reused memory: hand them to recycle() once nothing reads them, or just drop them.
   */
  async load(index: number, generation: number, length: number): Promise<Buffer | undefined> {
    const owner = this.owners?.ownerOf(index, generation);
    // An ancestor's object is read as what it is: its key, its AAD (volume id), its data key.
    const volumeId = owner ?? this.volumeId;
    const codec = owner === undefined ? this.codec : this.owners!.codecFor(owner);
    const context = { volumeId, index, generation };
    const stored = await this.store.get(chunkKey(volumeId, index, generation), undefined, { allocate: this.receiveInto }).catch((error: unknown) => {
      throw asEio(error, `download of chunk ${index} generation ${generation}`);
    });
    if (stored === undefined) return undefined;
    const { download, decoded } = this.buffers;
    const output = decoded.acquire(length);
    let plain: Buffer | undefined;
    try {
      plain = await codec.decode(stored, context, output);
    } finally {
      // Decoded (or refused): the stored bytes are read no more, unless the codec returned them as is.
      if (plain === undefined || plain.buffer !== stored.buffer) download.release(stored);
      if (plain === undefined || plain.buffer !== output.buffer || plain.byteOffset !== output.byteOffset) decoded.release(output);
    }
    if (plain.length !== length) {
      throw new StorageError("EIO", `chunk ${index} generation ${generation} holds ${plain.length} bytes, expected ${length}`);
    }
    return plain;
  }

  /**
   * Takes back the memory of a load()'s result for the next load. The caller must be sure nothing
   * reads it any more: the next download overwrites it. Anything else is ignored.
   */
  recycle(plain: Buffer): void {
    // Each pool ignores memory it did not lend: a codec may return the stored bytes themselves.
    this.buffers.decoded.release(plain);
    this.buffers.download.release(plain);
  }

  async deleteGenerations(chunks: ReadonlyArray<readonly [index: number, generation: number]>): Promise<void> {
    if (chunks.length === 0) return;
    await this.store.deleteMany(chunks.map(([index, generation]) => this.key(index, generation)));
  }
}
