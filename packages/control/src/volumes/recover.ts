/**
 * Rebuilds volume rows from the bucket alone: each volume header, unlocked with the master key or the
 * given passphrase, its newest manifest that decodes, and its snapshots (s/ manifests). A clone comes
 * back with its inherited keys and the ancestors' objects its map names. Volumes already in the
 * database are skipped. Admins only: recovered volumes become the caller's.
 */
import { DbError, findUserById, findVolumeById, insertRecoveredSnapshot, insertRecoveredVolume } from "@stratus/db";
import { listVolumeHeaders, readLatestManifest, readSnapshotManifests, SealedCodec, StorageError, unlockDataKey, type ObjectStore } from "@stratus/storage";
import * as z from "zod";
import { recordActivity } from "../activity/activity";
import { requireWrite, type ServiceContext } from "../context";
import { ServiceError } from "../errors";
import { storeUnlockGrant } from "../keys/unlock-grants";
import { recoverVolumesInput } from "./inputs";
import { parseInput } from "./volumes";

export interface RecoverOutcome {
  recovered: Array<{ id: string; name: string; epoch: number; chunks: number; snapshots: number }>;
  skipped: Array<{ id: string; name: string; reason: string }>;
}

export async function recoverVolumes(ctx: ServiceContext, rawInput: z.input<typeof recoverVolumesInput>): Promise<RecoverOutcome> {
  requireWrite(ctx);
  const input = parseInput(recoverVolumesInput, rawInput);
  const { runtime } = ctx;
  const user = await findUserById(runtime.database.db, ctx.actor.userId);
  if (!user?.isAdmin) throw new ServiceError("FORBIDDEN", "only an admin can recover volumes from the bucket");
  const outcome: RecoverOutcome = { recovered: [], skipped: [] };
  const headers = await listVolumeHeaders(runtime.store, {
    onInvalid: (key) => outcome.skipped.push({ id: key, name: "?", reason: "the volume header does not decode" }),
  });
  for (const header of headers) {
    const skip = (reason: string) => outcome.skipped.push({ id: header.volumeId, name: header.name, reason });
    if (await findVolumeById(runtime.database.db, header.volumeId)) {
      skip("already in the database");
      continue;
    }
    let dataKey: Buffer;
    try {
      dataKey = await unlockDataKey({ volumeId: header.volumeId, slots: header.slots, masterKey: runtime.masterKey.key, passphrase: input.passphrase });
    } catch (error) {
      if (error instanceof StorageError && error.code === "EPERM") {
        skip(input.passphrase ? "neither the master key nor the passphrase unlocks it" : "locked: give its passphrase");
        continue;
      }
      throw error;
    }
    try {
      const codec = new SealedCodec({ dataKey, compression: header.compression });
      const manifest = await readLatestManifest(runtime.store, codec, header.volumeId, {
        onInvalid: (key) => runtime.logger.warn({ key }, "skipping a manifest that does not decode"),
      });
      const chunks = manifest ? [...manifest.chunks].map(([index, c]) => [index, c.generation, c.storedSize, c.owner] as const) : [];
      try {
        await insertRecoveredVolume(runtime.database.db, {
          id: header.volumeId,
          ownerId: ctx.actor.userId,
          name: header.name,
          sizeBytes: header.sizeBytes,
          chunkSize: header.chunkSize,
          durability: header.durability,
          compression: header.compression,
          keySlots: header.slots,
          inheritedKeys: header.inherited,
          clonedFrom: header.clonedFrom,
          epoch: manifest?.epoch ?? 0,
          chunks,
        });
      } catch (error) {
        if (error instanceof DbError && (error.code === "VOLUME_EXISTS" || error.code === "INVALID_ARGUMENT")) {
          skip(error.message);
          continue;
        }
        throw error;
      }
      // Unlocked by passphrase: let the gateways open it until the grant expires.
      const auto = header.slots.some((slot) => slot.kind === "master" && slot.masterKeyId === runtime.masterKey.id);
      if (!auto) await storeUnlockGrant(runtime.redis, runtime.config.prefix, runtime.masterKey.key, header.volumeId, dataKey);
      const snapshots = await recoverSnapshots(runtime.store, codec, header.volumeId, ctx);
      outcome.recovered.push({ id: header.volumeId, name: header.name, epoch: manifest?.epoch ?? 0, chunks: chunks.length, snapshots });
      await recordActivity(ctx, {
        ownerId: ctx.actor.userId,
        volumeId: header.volumeId,
        volumeName: header.name,
        action: "volume.recover",
        detail: { epoch: manifest?.epoch ?? 0 },
      });
      runtime.logger.info(
        { volumeId: header.volumeId, volume: header.name, epoch: manifest?.epoch ?? 0, chunks: chunks.length },
        "volume recovered from the bucket",
      );
    } finally {
      dataKey.fill(0);
    }
  }
  return outcome;
}

/** The volume's snapshots from its s/ manifests; one that does not open is logged and left out. */
async function recoverSnapshots(store: ObjectStore, codec: SealedCodec, volumeId: string, ctx: ServiceContext): Promise<number> {
  const { runtime } = ctx;
  const manifests = await readSnapshotManifests(store, codec, volumeId, {
    onInvalid: (key) => runtime.logger.warn({ key }, "skipping a snapshot manifest that does not open"),
  });
  for (const snapshot of manifests) {
    await insertRecoveredSnapshot(runtime.database.db, {
      id: snapshot.id,
      volumeId,
      name: snapshot.name,
      epoch: snapshot.epoch,
      sizeBytes: snapshot.sizeBytes,
      createdAt: new Date(snapshot.createdAt),
      chunks: [...snapshot.chunks].map(([index, c]) => [index, c.generation, c.storedSize, c.owner ?? volumeId] as const),
    });
  }
  return manifests.length;
}
