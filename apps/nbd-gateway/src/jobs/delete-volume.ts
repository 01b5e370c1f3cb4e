/**
 * The `delete-volume` job's body: every object under the volume's prefix (chunk generations, manifests,
 * the header), then the row (its chunk map and garbage rows go with it by cascade). The volume was marked
 * 'deleting' before the job was queued, so nothing attaches it meanwhile; a crash or a failed attempt
 * resumes from the listing, and deleting what is already gone is not an error.
 */
import { deleteVolumeRow, findVolumeById, type Db } from "@stratus/db";
import { volumePrefix, type ObjectStore } from "@stratus/storage";

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
  let deleted = 0;
  // Always list from the start: each page is deleted before the next listing, so the listing shrinks.
  let previousFirst: string | undefined;
  for (;;) {
    const page = await store.list({ prefix, limit: 1000 });
    if (page.objects.length === 0) break;
    const first = page.objects[0]!.key;
    if (first === previousFirst) throw new Error(`deleting ${first} did not remove it; will retry`);
    previousFirst = first;
    await store.deleteMany(page.objects.map((object) => object.key));
    deleted += page.objects.length;
    await onProgress?.(deleted);
  }
  await deleteVolumeRow(db, volumeId);
  return deleted;
}
