/**
 * Manifests `vol/<volumeId>/m/<epoch, 16 hex>`: after every index commit, the volume's whole
 * chunk map, so `stratus volume recover` can rebuild the database from the bucket alone. The
 * body is compact binary, then compressed and sealed by the volume's codec as kind 2 with
 * generation = epoch (so a manifest cannot be passed off as another epoch's or volume's):
 *
 *   u8 version (1) | varint epoch | varint count | count × (varint index delta, varint generation, varint storedSize)
 *
 * A clone's map, whose chunks may be its ancestors' objects, is version 2: after the epoch a table of
 * owners (varint n, n × (varint length, UTF-8 volume id)), and each entry ends with a varint owner
 * (0: the volume's own, k: the table's k-th). Entries are in index order; varints are unsigned
 * LEB128 (numbers up to 2^53).
 */
import { StorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import type { ManifestContext } from "../codec/sealed-codec";
import { volumePrefix } from "../volume/chunk-layout";

const MANIFEST_VERSION = 1;
const MANIFEST_VERSION_OWNERS = 2;
const EPOCH_HEX = /^[0-9a-f]{16}$/;

export interface ManifestChunk {
  generation: number;
  storedSize: number;
  /** An ancestor's object a clone reads (ChunkRef.owner); absent: the volume's own. */
  owner?: string;
}

export interface Manifest {
  epoch: number;
  chunks: Map<number, ManifestChunk>;
}

/** What sealing a manifest needs: SealedCodec provides it. */
export interface ManifestCodec {
  encodeManifest(plain: Buffer, context: ManifestContext): Buffer;
  decodeManifest(stored: Buffer, context: ManifestContext): Buffer;
}

export function manifestPrefix(volumeId: string): string {
  return `${volumePrefix(volumeId)}m/`;
}

export function manifestKey(volumeId: string, epoch: number): string {
  checkNumber(epoch, "epoch");
  return `${manifestPrefix(volumeId)}${epoch.toString(16).padStart(16, "0")}`;
}

export function encodeManifestBody(epoch: number, chunks: ReadonlyMap<number, ManifestChunk>): Buffer {
  const indexes = [...chunks.keys()].sort((a, b) => a - b);
  const owners = [...new Set([...chunks.values()].flatMap((chunk) => (chunk.owner === undefined ? [] : [chunk.owner])))];
  const ownerRef = new Map(owners.map((owner, i) => [owner, i + 1]));
  const writer = new VarintWriter(16 + indexes.length * 12);
  writer.byte(owners.length === 0 ? MANIFEST_VERSION : MANIFEST_VERSION_OWNERS);
  writer.varint(checkNumber(epoch, "epoch"));
  if (owners.length > 0) {
    writer.varint(owners.length);
    for (const owner of owners) writer.text(owner);
  }
  writer.varint(indexes.length);
  let previous = 0;
  for (const index of indexes) {
    const chunk = chunks.get(index)!;
    writer.varint(checkNumber(index, "chunk index") - previous);
    writer.varint(checkNumber(chunk.generation, "generation"));
    writer.varint(checkNumber(chunk.storedSize, "stored size"));
    if (owners.length > 0) writer.varint(chunk.owner === undefined ? 0 : ownerRef.get(chunk.owner)!);
    previous = index;
  }
  return writer.done();
}

export function decodeManifestBody(body: Buffer, what = "manifest"): Manifest {
  const reader = new VarintReader(body, what);
  const version = reader.byte();
  if (version !== MANIFEST_VERSION && version !== MANIFEST_VERSION_OWNERS) throw new StorageError("EIO", `${what} has unsupported version ${version}`);
  const epoch = reader.varint();
  const owners: string[] = [];
  if (version === MANIFEST_VERSION_OWNERS) {
    const ownerCount = reader.varint();
    if (ownerCount * 2 > body.length) throw new StorageError("EIO", `${what} claims ${ownerCount} owners in ${body.length} bytes`);
    for (let i = 0; i < ownerCount; i++) owners.push(reader.text());
  }
  const count = reader.varint();
  // Each entry takes at least 3 bytes: a count beyond that is corruption, not a huge allocation.
  if (count * 3 > body.length) throw new StorageError("EIO", `${what} claims ${count} chunks in ${body.length} bytes`);
  const chunks = new Map<number, ManifestChunk>();
  let index = 0;
  for (let i = 0; i < count; i++) {
    const delta = reader.varint();
    if (i > 0 && delta === 0) throw new StorageError("EIO", `${what} lists chunk ${index} twice`);
    index += delta;
    if (!Number.isSafeInteger(index)) throw new StorageError("EIO", `${what} has a chunk index past 2^53`);
    const chunk: ManifestChunk = { generation: reader.varint(), storedSize: reader.varint() };
    if (version === MANIFEST_VERSION_OWNERS) {
      const ref = reader.varint();
      if (ref > owners.length) throw new StorageError("EIO", `${what} names owner ${ref} of ${owners.length}`);
      if (ref > 0) chunk.owner = owners[ref - 1]!;
    }
    chunks.set(index, chunk);
  }
  if (!reader.atEnd()) throw new StorageError("EIO", `${what} has trailing bytes`);
  return { epoch, chunks };
}

export interface WriteManifestOptions {
  /**
   * How many newest manifests to keep (default 2: the one just written and its predecessor,
   * in case the newest is ever unreadable). Older ones are deleted beside the write. Infinity
   * keeps all.
   */
  keep?: number;
  /**
   * Takes the prune of older manifests instead of waiting for it: the write then settles with its
   * PUT. A cloud FLUSH waits for the manifest, and the prune (a LIST, then a DELETE) took two more
   * round trips of the object store after it.
   */
  pruneInBackground?: (prune: Promise<void>) => void;
}

/**
 * Seals and stores the volume's chunk map as of `epoch`. The map is serialised synchronously,
 * before the first await, so the caller may go on changing its own map at once.
 */
export async function writeManifest(
  store: ObjectStore,
  codec: ManifestCodec,
  volumeId: string,
  epoch: number,
  chunks: ReadonlyMap<number, ManifestChunk>,
  options: WriteManifestOptions = {},
): Promise<void> {
  const body = codec.encodeManifest(encodeManifestBody(epoch, chunks), { volumeId, epoch });
  const keep = options.keep ?? 2;
  if (keep === Number.POSITIVE_INFINITY) return store.put(manifestKey(volumeId, epoch), body);
  checkKeep(keep);
  const put = store.put(manifestKey(volumeId, epoch), body);
  // Keeping one, the prune deletes the predecessor: only after the PUT landed. Keeping more, it runs
  // beside the PUT, two round trips fewer, and keeps the newest keep-1 older ones, so whether the PUT
  // lands or fails, the predecessor stays.
  const prune =
    keep === 1
      ? put.then(
          () => pruneManifests(store, volumeId, { keep, below: epoch }),
          () => undefined, // the PUT's failure is the write's to report
        )
      : listManifestEpochs(store, volumeId).then((epochs) =>
          deleteAllButNewest(
            store,
            volumeId,
            epochs.filter((e) => e < epoch),
            keep - 1,
          ),
        );
  if (options.pruneInBackground !== undefined) {
    options.pruneInBackground(prune);
    return put;
  }
  const [written] = await Promise.allSettled([put, prune]);
  if (written.status === "rejected") throw written.reason;
  await prune;
}

/** Deletes all but the newest `keep` manifests, and never one at or above `below` (if given). */
export async function pruneManifests(store: ObjectStore, volumeId: string, options: { keep: number; below?: number }): Promise<void> {
  checkKeep(options.keep);
  const epochs = await listManifestEpochs(store, volumeId);
  const doomed = epochs.slice(0, Math.max(0, epochs.length - options.keep)).filter((epoch) => options.below === undefined || epoch < options.below);
  if (doomed.length > 0) await store.deleteMany(doomed.map((epoch) => manifestKey(volumeId, epoch)));
}

function checkKeep(keep: number): void {
  if (!Number.isInteger(keep) || keep < 1) throw new StorageError("EINVAL", `keep must be at least 1, got ${keep}`);
}

/** `epochs` ascending: deletes all but the last `keep` of them. */
async function deleteAllButNewest(store: ObjectStore, volumeId: string, epochs: readonly number[], keep: number): Promise<void> {
  const doomed = epochs.slice(0, Math.max(0, epochs.length - keep));
  if (doomed.length > 0) await store.deleteMany(doomed.map((epoch) => manifestKey(volumeId, epoch)));
}

/** Epochs of the volume's manifests, ascending (every page of the listing). */
export async function listManifestEpochs(store: ObjectStore, volumeId: string): Promise<number[]> {
  const prefix = manifestPrefix(volumeId);
  const epochs: number[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix, startAfter });
    for (const object of page.objects) {
      const name = object.key.slice(prefix.length);
      if (EPOCH_HEX.test(name)) epochs.push(Number.parseInt(name, 16));
    }
    const last = page.objects.at(-1);
    if (!page.truncated || last === undefined) break;
    startAfter = last.key;
  }
  return epochs.filter((epoch) => Number.isSafeInteger(epoch)).sort((a, b) => a - b);
}

export interface ReadLatestManifestOptions {
  /** Called for each manifest skipped because it does not decode (newest first). */
  onInvalid?: (key: string, error: StorageError) => void;
}

/**
 * The newest manifest that decodes, or undefined when there is none. A manifest that fails
 * authentication or parsing is skipped for the one before it; a store failure is thrown (an
 * older manifest must not silently stand in for one we merely could not fetch).
 */
export async function readLatestManifest(
  store: ObjectStore,
  codec: ManifestCodec,
  volumeId: string,
  options: ReadLatestManifestOptions = {},
): Promise<Manifest | undefined> {
  const epochs = await listManifestEpochs(store, volumeId);
  for (const epoch of epochs.reverse()) {
    const key = manifestKey(volumeId, epoch);
    const stored = await store.get(key);
    if (stored === undefined) continue; // pruned between the listing and the read
    try {
      const manifest = decodeManifestBody(codec.decodeManifest(stored, { volumeId, epoch }), key);
      if (manifest.epoch !== epoch) throw new StorageError("EIO", `${key} holds epoch ${manifest.epoch}`);
      return manifest;
    } catch (error) {
      if (!(error instanceof StorageError) || error.code !== "EIO") throw error;
      options.onInvalid?.(key, error);
    }
  }
  return undefined;
}

function checkNumber(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new StorageError("EINVAL", `bad ${what} ${value}`);
  return value;
}

class VarintWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(capacity: number) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  varint(value: number): void {
    this.reserve(8);
    // Division, not shifts: shifts truncate to 32 bits and values go up to 2^53.
    while (value >= 0x80) {
      this.buffer[this.length++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buffer[this.length++] = value;
  }

  text(value: string): void {
    const bytes = Buffer.from(value, "utf8");
    this.varint(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buffer, this.length);
    this.length += bytes.length;
  }

  done(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(bigger, 0, 0, this.length);
    this.buffer = bigger;
  }
}

class VarintReader {
  private offset = 0;

  constructor(
    private readonly buffer: Buffer,
    private readonly what: string,
  ) {}

  byte(): number {
    if (this.offset >= this.buffer.length) throw new StorageError("EIO", `${this.what} is truncated`);
    return this.buffer[this.offset++]!;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) break;
        return value;
      }
      scale *= 0x80;
    }
    throw new StorageError("EIO", `${this.what} has a number past 2^53`);
  }

  text(): string {
    const length = this.varint();
    if (this.offset + length > this.buffer.length) throw new StorageError("EIO", `${this.what} is truncated`);
    const value = this.buffer.toString("utf8", this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  atEnd(): boolean {
    return this.offset === this.buffer.length;
  }
}
