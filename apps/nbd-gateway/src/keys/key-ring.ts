/**
 * Unlocked data keys, in this process's memory only (never logged, persisted or queued). A volume with
 * an auto-unlock slot is unlocked on demand with the master key; one without needs `unlock` with its
 * passphrase first, and until then its engine refuses to open ("locked").
 */
import { unlockDataKey, type KeySlot } from "@stratus/storage";
import type { MasterKey } from "./master-key-file";

export class VolumeLockedError extends Error {
  constructor(readonly volumeId: string) {
    super(`volume ${volumeId} is locked: unlock it with its passphrase (stratus volume unlock NAME)`);
    this.name = "VolumeLockedError";
  }
}

export class KeyRing {
  readonly #keys = new Map<string, Buffer>();

  constructor(private readonly master: MasterKey) {}

  get masterKey(): Buffer {
    return this.master.key;
  }

  /** The volume's data key: from memory, else from its auto-unlock slot; VolumeLockedError if neither. */
  async dataKeyFor(volumeId: string, slots: readonly KeySlot[]): Promise<Buffer> {
    const known = this.#keys.get(volumeId);
    if (known) return known;
    const auto = slots.some((slot) => slot.kind === "master" && slot.masterKeyId === this.master.id);
    if (!auto) throw new VolumeLockedError(volumeId);
    const key = await unlockDataKey({ volumeId, slots, masterKey: this.master.key });
    this.#keys.set(volumeId, key);
    return key;
  }

  /** Unlocks with a passphrase (StorageError EPERM "wrong passphrase" when it does not open a slot). */
  async unlock(volumeId: string, slots: readonly KeySlot[], passphrase: string): Promise<Buffer> {
    const key = await unlockDataKey({ volumeId, slots, passphrase });
    this.#keys.set(volumeId, key);
    return key;
  }

  remember(volumeId: string, dataKey: Buffer): void {
    this.#keys.set(volumeId, dataKey);
  }

  isUnlocked(volumeId: string): boolean {
    return this.#keys.has(volumeId);
  }

  forget(volumeId: string): void {
    const key = this.#keys.get(volumeId);
    key?.fill(0);
    this.#keys.delete(volumeId);
  }
}
