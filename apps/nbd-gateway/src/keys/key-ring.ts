/**
 * Data keys of the volumes this gateway opens, in this process's memory only (never logged, persisted or
 * queued). A volume's key comes from, in order: memory (remembered), its auto-unlock slot (unwrapped with
 * the master key), or an unlock grant in Redis that `unlockVolume` left wherever the passphrase was given
 * (sealed with the master key). Keys from grants are not cached: a lock (grant removed) or an expired
 * grant takes effect at the next open. Without any of them the engine refuses to open ("locked").
 */
import type { MasterKey } from "@stratus/control";
import { unlockDataKey, type KeySlot } from "@stratus/storage";

export class VolumeLockedError extends Error {
  constructor(readonly volumeId: string) {
    super(`volume ${volumeId} is locked: unlock it with its passphrase (stratus volume unlock NAME)`);
    this.name = "VolumeLockedError";
  }
}

/** Reads and opens an unlock grant (undefined: none, expired, or not for this master key). */
export type UnlockGrantReader = (volumeId: string) => Promise<Buffer | undefined>;

export class KeyRing {
  readonly #keys = new Map<string, Buffer>();

  constructor(
    private readonly master: MasterKey,
    private readonly grants: UnlockGrantReader = async () => undefined,
  ) {}

  get masterKey(): Buffer {
    return this.master.key;
  }

  /** The volume's data key; VolumeLockedError when nothing unlocks it. */
  async dataKeyFor(volumeId: string, slots: readonly KeySlot[]): Promise<Buffer> {
    const known = this.#keys.get(volumeId);
    if (known) return known;
    const auto = slots.some((slot) => slot.kind === "master" && slot.masterKeyId === this.master.id);
    if (auto) {
      const key = await unlockDataKey({ volumeId, slots, masterKey: this.master.key });
      this.#keys.set(volumeId, key);
      return key;
    }
    const granted = await this.grants(volumeId);
    if (granted) return granted;
    throw new VolumeLockedError(volumeId);
  }

  remember(volumeId: string, dataKey: Buffer): void {
    this.#keys.set(volumeId, dataKey);
  }

  forget(volumeId: string): void {
    const key = this.#keys.get(volumeId);
    key?.fill(0);
    this.#keys.delete(volumeId);
  }
}
