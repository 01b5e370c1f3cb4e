/**
 * The volume header object `vol/<volumeId>/header`: JSON that makes the bucket self-describing
 * (format, geometry, codec, durability and the wrapped key slots). Not secret and not
 * authenticated: the slots are useless without a passphrase or the master key, and every chunk
 * and manifest is authenticated on its own. It is the only object ever overwritten (on create,
 * resize and passphrase change).
 */
import * as z from "zod";
import { StorageError } from "../errors";
import type { ObjectStore } from "../object-store/object-store";
import { volumePrefix } from "../volume/chunk-layout";
import { keySlotSchema } from "../keys/key-slot";
import { inheritedKeySchema } from "../keys/inherited-keys";

export const VOLUME_HEADER_FORMAT = 1;

export const volumeHeaderSchema = z.object({
  format: z.literal(VOLUME_HEADER_FORMAT),
  volumeId: z
    .string()
    .min(1)
    .regex(/^[^/]+$/),
  name: z.string().min(1),
  sizeBytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  chunkSize: z.number().int().positive(),
  compression: z.enum(["none", "zstd"]),
  durability: z.enum(["local", "cloud"]),
  /** ISO 8601 */
  createdAt: z.string().min(1),
  slots: z.array(keySlotSchema).min(1),
  /** A clone's ancestors' data keys, sealed with its own (inherited-keys.ts). */
  inherited: z.array(inheritedKeySchema).optional(),
  /** The snapshot a clone was made from, as named then. */
  clonedFrom: z.object({ volumeId: z.string(), volumeName: z.string(), snapshotId: z.string(), snapshotName: z.string() }).optional(),
});

export type VolumeHeader = z.infer<typeof volumeHeaderSchema>;

export function volumeHeaderKey(volumeId: string): string {
  return `${volumePrefix(volumeId)}header`;
}

export function encodeVolumeHeader(header: VolumeHeader): Buffer {
  const checked = volumeHeaderSchema.safeParse(header);
  if (!checked.success) throw new StorageError("EINVAL", `invalid volume header: ${describeIssues(checked.error)}`);
  return Buffer.from(`${JSON.stringify(checked.data, null, 2)}\n`, "utf8");
}

/** Parses and validates; StorageError("EIO") for anything that is not a header we can read. */
export function decodeVolumeHeader(bytes: Uint8Array, what = "volume header"): VolumeHeader {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch (error) {
    throw new StorageError("EIO", `${what} is not JSON`, { cause: error });
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (typeof format === "number" && format !== VOLUME_HEADER_FORMAT) {
    throw new StorageError("EIO", `${what} has format ${format}; this version reads format ${VOLUME_HEADER_FORMAT}`);
  }
  const checked = volumeHeaderSchema.safeParse(json);
  if (!checked.success) throw new StorageError("EIO", `${what} is invalid: ${describeIssues(checked.error)}`);
  return checked.data;
}

export async function writeVolumeHeader(store: ObjectStore, header: VolumeHeader): Promise<void> {
  await store.put(volumeHeaderKey(header.volumeId), encodeVolumeHeader(header));
}

/** The volume's header, or undefined when the bucket has none. */
export async function readVolumeHeader(store: ObjectStore, volumeId: string): Promise<VolumeHeader | undefined> {
  const key = volumeHeaderKey(volumeId);
  const bytes = await store.get(key);
  if (bytes === undefined) return undefined;
  const header = decodeVolumeHeader(bytes, key);
  if (header.volumeId !== volumeId) throw new StorageError("EIO", `${key} names volume ${header.volumeId}`);
  return header;
}

export interface ListVolumeHeadersOptions {
  /** Called for a header that does not decode; without it such a header throws. */
  onInvalid?: (key: string, error: StorageError) => void;
}

/**
 * Every volume header in the bucket, in volume id order. Walks `vol/` one volume at a time: it
 * lists the first key of the next volume, reads that volume's header, then skips the rest of
 * its keys with startAfter = `vol/<id>/~` ('~' sorts after every key we write), so the cost is
 * one LIST and one GET per volume however many chunks each has.
 */
export async function listVolumeHeaders(store: ObjectStore, options: ListVolumeHeadersOptions = {}): Promise<VolumeHeader[]> {
  const headers: VolumeHeader[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix: "vol/", startAfter, limit: 1 });
    const first = page.objects[0];
    if (first === undefined) return headers;
    const volumeId = first.key.slice("vol/".length).split("/")[0]!;
    startAfter = `vol/${volumeId}/~`;
    if (first.key === `vol/${volumeId}`) continue; // a stray object, not a volume's folder
    try {
      const header = await readVolumeHeader(store, volumeId);
      if (header !== undefined) headers.push(header);
    } catch (error) {
      if (options.onInvalid === undefined || !(error instanceof StorageError) || error.code !== "EIO") throw error;
      options.onInvalid(volumeHeaderKey(volumeId), error);
    }
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ");
}
