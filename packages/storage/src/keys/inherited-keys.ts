/**
 * A clone's ancestors' data keys (docs/snapshots-design.md, "Keys"): each sealed with the clone's own
 * data key (AES-256-GCM, additional data = clone id + ancestor id), kept in the clone's row and bucket
 * header. Unlocking the clone unlocks them, so it reads the chunks it shares with its ancestors as what
 * they are: under the ancestor's key, prefix and AAD. No chunk is copied or re-sealed.
 */
import * as z from "zod";
import { StorageError } from "../errors";
import { unwrap, wrap } from "./key-slots";

export const inheritedKeySchema = z.object({
  volumeId: z.string().min(1),
  nonce: z.string().min(1),
  wrapped: z.string().min(1),
});

export type InheritedKey = z.infer<typeof inheritedKeySchema>;

const inheritedAad = (cloneId: string, ancestorId: string) => Buffer.from(`stratus-inherited-key-v1\0${cloneId}\0${ancestorId}`, "utf8");

/** Seals each ancestor's key (volume id -> data key) for the clone. */
export function sealInheritedKeys(cloneId: string, cloneKey: Buffer, ancestors: ReadonlyMap<string, Buffer>): InheritedKey[] {
  return [...ancestors].map(([volumeId, key]) => ({ volumeId, ...wrap(cloneKey, key, inheritedAad(cloneId, volumeId)) }));
}

/** The ancestors' data keys (volume id -> key); EIO when one does not open with the clone's key. */
export function openInheritedKeys(cloneId: string, cloneKey: Buffer, inherited: readonly InheritedKey[]): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const entry of inherited) {
    const key = unwrap(cloneKey, entry, inheritedAad(cloneId, entry.volumeId));
    if (key === undefined) throw new StorageError("EIO", `the key clone ${cloneId} inherits from ${entry.volumeId} does not open with the clone's key`);
    out.set(entry.volumeId, key);
  }
  return out;
}
