/**
 * Clones (docs/snapshots-design.md): a new volume, made at once, whose map starts as a snapshot's.
 * It shares the snapshot's chunk objects (each row names its owner) and reads them under their
 * owners' keys, which it carries sealed with its own (inherited keys). Its writes go to its own
 * prefix and key, so the parent never changes; the GC counts its rows as references, so deleting
 * the parent or the snapshot never breaks it.
 */
import { insertCloneVolume, loadChunkMap, newId, type VolumeRow } from "@stratus/db";
import { createKeySlots, sealInheritedKeys, SealedCodec, writeManifest, type Compression } from "@stratus/storage";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { storeUnlockGrant } from "../keys/unlock-grants";
import { existingVolumeName, passphraseInput, volumeNameInput } from "../volumes/inputs";
import { translateDbError, writeHeader } from "../volumes/lookup";
import { volumeView, type VolumeView } from "../volumes/view";
import { parseInput } from "../volumes/volumes";
import { deleteVolumeRow } from "@stratus/db";
import { findOwnedSnapshot } from "./snapshots";
import { readingKeys, volumeDataKey } from "./volume-keys";

export const cloneVolumeInput = z.object({
  /** VOL@SNAPSHOT */
  source: existingVolumeName.refine((value) => /^[^@]+@[^@]+$/.test(value), "name the snapshot as VOLUME@SNAPSHOT"),
  name: volumeNameInput,
  /** The clone's own passphrase (needed when it has no auto-unlock); also tried on a locked parent. */
  passphrase: passphraseInput.optional(),
  /** The parent's passphrase, when it is locked and differs from the clone's. */
  parentPassphrase: passphraseInput.optional(),
  /** Default: as the parent. */
  autoUnlock: z.boolean().optional(),
});

export async function cloneVolume(ctx: ServiceContext, rawInput: z.input<typeof cloneVolumeInput>): Promise<VolumeView> {
  requireWrite(ctx);
  const input = parseInput(cloneVolumeInput, rawInput);
  const { runtime } = ctx;
  const at = input.source.lastIndexOf("@");
  const { volume: parent, snapshot } = await findOwnedSnapshot(ctx, input.source.slice(0, at), input.source.slice(at + 1));
  const parentAutoUnlock = parent.keySlots.some((slot) => slot.kind === "master");
  const autoUnlock = input.autoUnlock ?? parentAutoUnlock;
  if (!autoUnlock && !input.passphrase) {
    throw new ServiceError("BAD_REQUEST", "a clone without auto-unlock needs a passphrase", { field: "passphrase" });
  }
  // An unlocked parent (auto-unlock or grant) opens as it is; the clone's passphrase is tried only on a locked one.
  const parentKey = await volumeDataKey(runtime, parent, input.parentPassphrase).catch((error: unknown) => {
    const locked = error instanceof ServiceError && error.code === "CONFLICT" && !input.parentPassphrase;
    if (!locked || !input.passphrase) throw error;
    return volumeDataKey(runtime, parent, input.passphrase);
  });
  const ancestors = readingKeys(parent, parentKey);
  const id = newId("volume");
  const { dataKey, slots } = await createKeySlots({
    volumeId: id,
    passphrase: input.passphrase,
    masterKey: autoUnlock ? runtime.masterKey.key : undefined,
    kdf: runtime.config.kdf,
  });
  let row: VolumeRow;
  try {
    try {
      row = await insertCloneVolume(
        runtime.database.db,
        {
          id,
          ownerId: ctx.actor.userId,
          name: input.name,
          sizeBytes: snapshot.sizeBytes,
          chunkSize: parent.chunkSize,
          durability: parent.durability,
          compression: parent.compression,
          keySlots: slots,
          inheritedKeys: sealInheritedKeys(id, dataKey, ancestors),
          clonedFrom: { volumeId: parent.id, volumeName: parent.name, snapshotId: snapshot.id, snapshotName: snapshot.name },
        },
        snapshot.id,
      );
    } catch (error) {
      throw translateDbError(error);
    }
    try {
      await writeHeader(runtime.store, row, slots);
      // Its map from the first moment: recover from the bucket finds the clone before its first commit.
      const map = await loadChunkMap(runtime.database.db, row.id);
      await writeManifest(runtime.store, new SealedCodec({ dataKey, compression: row.compression as Compression }), row.id, map.epoch, map.chunks);
      if (!autoUnlock) await storeUnlockGrant(runtime.redis, runtime.config.prefix, runtime.masterKey.key, row.id, dataKey);
    } catch (error) {
      await deleteVolumeRow(runtime.database.db, row.id).catch(() => undefined);
      throw error;
    }
  } finally {
    dataKey.fill(0);
    for (const key of ancestors.values()) key.fill(0);
  }
  await recordActivity(ctx, {
    ownerId: row.ownerId,
    volumeId: row.id,
    volumeName: row.name,
    action: "volume.clone",
    detail: { from: `${parent.name}@${snapshot.name}`, epoch: snapshot.epoch, autoUnlock },
  });
  runtime.logger.info({ volumeId: row.id, volume: row.name, parentId: parent.id, snapshotId: snapshot.id }, "volume cloned");
  return volumeView(runtime, row);
}
