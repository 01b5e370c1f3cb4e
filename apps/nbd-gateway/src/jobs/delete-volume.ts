/**
 * The `delete-volume` job's body: every object under the volume's prefix (chunk generations, manifests,
 * snapshot manifests, the header), then the row (its chunk map, snapshots and garbage rows go with it by
 * cascade). Chunk objects a clone still reads stay: the clone names them, and its GC deletes each once it
 * stops reading it. The volume was marked 'deleting' before the job was queued, so nothing attaches or
 * clones it meanwhile; a crash or a failed attempt resumes from the listing, and deleting what is already
 * gone is not an error.
 */
import { deleteVolumeRow, findVolumeById, objectsReadByOthers, type Db } from "@stratus/db";
import { parseChunkKey, volumePrefix, type ObjectStore } from "@stratus/storage";

export interface DeleteVolumeOptions {
  db: Db;
  store: ObjectStore;
  volumeId: string;
  /** Called after each page with the running total. */
  onProgress?: (objectsDeleted: number) => Promise<void> | void;
}

export async function deleteVolumeCompletely({ db, store, volumeId, onProgress }: DeleteVolumeOptions): Promise<number> {
  const row = await findVolumeById(db, volumeId);
  if (row && row.state !== "deleting") throw new Error(`volume ${volumeId} is not marked for deletion`);
  const prefix = volumePrefix(volumeId);
  const kept = await objectsReadByOthers(db, volumeId);
  const readByOthers = (key: string) => {
    const parts = parseChunkKey(key);
    return parts !== undefined && parts.volumeId === volumeId && kept.has(`${parts.index}:${parts.generation}`);
  };
  let deleted = 0;
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix, startAfter, limit: 1000 });
    if (page.objects.length === 0) break;
    const doomed = page.objects.map((object) => object.key).filter((key) => !readByOthers(key));
    if (doomed.length > 0) await store.deleteMany(doomed);
    deleted += doomed.length;
    await onProgress?.(deleted);
    if (!page.truncated) break;
    startAfter = page.objects.at(-1)!.key;
  }
  await deleteVolumeRow(db, volumeId);
  return deleted;
}
