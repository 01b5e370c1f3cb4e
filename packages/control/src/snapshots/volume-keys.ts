/**
 * A volume's data key in the control plane, for what the verbs seal themselves (snapshot manifests, a
 * clone's inherited keys): from its auto-unlock slot, an unlock grant, or the passphrase the caller
 * gave. Kept only for the call; the caller zeroes it.
 */
import type { VolumeRow } from "@stratus/db";
import { openInheritedKeys, unlockDataKey, type InheritedKey } from "@stratus/storage";
import type { Runtime } from "../context";
import { ServiceError } from "../errors";
import { readUnlockGrant } from "../keys/unlock-grants";
import { translateKeyError } from "../volumes/lookup";
import { slotsOf } from "../volumes/view";

export async function volumeDataKey(runtime: Runtime, row: VolumeRow, passphrase?: string): Promise<Buffer> {
  const slots = slotsOf(row);
  try {
    if (passphrase) return await unlockDataKey({ volumeId: row.id, slots, passphrase });
    if (slots.some((slot) => slot.kind === "master" && slot.masterKeyId === runtime.masterKey.id)) {
      return await unlockDataKey({ volumeId: row.id, slots, masterKey: runtime.masterKey.key });
    }
  } catch (error) {
    throw translateKeyError(error, row.name);
  }
  const granted = await readUnlockGrant(runtime.redis, runtime.config.prefix, runtime.masterKey.key, row.id);
  if (granted) return granted;
  throw new ServiceError("CONFLICT", `volume ${row.name} is locked: unlock it with its passphrase first (stratus volume unlock ${row.name})`, {
    field: "passphrase",
  });
}

/** Every key a volume reads with: its own, and its ancestors' when it is a clone (volume id -> key). */
export function readingKeys(row: VolumeRow, dataKey: Buffer): Map<string, Buffer> {
  const keys = openInheritedKeys(row.id, dataKey, row.inheritedKeys as InheritedKey[]);
  keys.set(row.id, dataKey);
  return keys;
}
