/**
 * Attach and detach events for the account's activity view. The engines report every NBD connection
 * that opens or lets go of a volume; a device's connections (multi-conn opens several) count as one
 * attachment: "volume.attached" when its first opens, "volume.detached" when its last closes, whether
 * it disconnected, was handed over, fenced or locked. Recording never delays or fails a connection:
 * the rows are written in order in the background, and a failure is logged.
 */
import { recordAttachActivity } from "@stratus/control";
import type { Db, VolumeRow } from "@stratus/db";
import type { LeaseDevice } from "../engine/lease-keeper";
import type { Logger } from "../logger";

export class AttachActivity {
  /** Open connections per volume and device. */
  readonly #open = new Map<string, number>();
  /** Rows are written one after another, so a detach never lands before its attach. */
  #writes: Promise<void> = Promise.resolve();

  constructor(private readonly options: { db: Db; logger: Pick<Logger, "warn"> }) {}

  connection(change: "opened" | "closed", { volume, device }: { volume: VolumeRow; device: LeaseDevice }): void {
    const key = `${volume.id}\0${device.deviceCredentialId ?? ""}\0${device.holderName}`;
    const before = this.#open.get(key) ?? 0;
    const after = Math.max(0, before + (change === "opened" ? 1 : -1));
    if (after === 0) this.#open.delete(key);
    else this.#open.set(key, after);
    if (before === 0 && after === 1) this.#record("attached", volume, device);
    if (before === 1 && after === 0) this.#record("detached", volume, device);
  }

  /** Resolves once every event reported so far is written (tests, shutdown). */
  settled(): Promise<void> {
    return this.#writes;
  }

  #record(kind: "attached" | "detached", volume: VolumeRow, device: LeaseDevice): void {
    const entry = {
      volumeId: volume.id,
      volumeName: volume.name,
      ownerId: volume.ownerId,
      holder: device.holderName,
      deviceCredentialId: device.deviceCredentialId,
      clientAddress: device.clientAddress,
    };
    this.#writes = this.#writes.then(() =>
      recordAttachActivity(this.options.db, kind, entry).catch((error: unknown) =>
        this.options.logger.warn({ err: error, volumeId: volume.id }, `could not record that the volume was ${kind}`),
      ),
    );
  }
}
