import type { ObjectStore } from "../object-store/object-store";
import { volumePrefix } from "./chunk-layout";

/**
 * Removes every object under the volume's prefix (all chunk generations, later the header too).
 * Pages through the listing; deleting a page before asking for the next is safe because the next
 * listing resumes strictly after the last key seen. Returns how many objects were deleted.
 */
export async function deleteVolumeObjects(store: ObjectStore, volumeId: string): Promise<number> {
  const prefix = volumePrefix(volumeId);
  let deleted = 0;
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix, startAfter, limit: 1000 });
    if (page.objects.length > 0) {
      await store.deleteMany(page.objects.map((object) => object.key));
      deleted += page.objects.length;
      startAfter = page.objects.at(-1)!.key;
    }
    if (!page.truncated || page.objects.length === 0) return deleted;
  }
}
