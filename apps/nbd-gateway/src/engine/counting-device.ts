import { StorageError, type BlockDevice, type Volume } from "@stratus/storage";
import type { Engine } from "./open-engine";

/**
 * The engine as one connection sees it, counting the bytes it reads and writes. A FLUSH is
 * acknowledged only while `leaseStillHeld` says so: a fenced holder's FLUSH fails.
 */
export function countingDevice(volume: Volume, traffic: Engine["traffic"], leaseStillHeld: () => Promise<boolean> = async () => true): BlockDevice {
  return {
    get size() {
      return volume.size;
    },
    capabilities: volume.capabilities,
    read: async (offset, target) => {
      await volume.read(offset, target);
      traffic.readBytes += target.length;
    },
    write: async (offset, data, options) => {
      await volume.write(offset, data, options);
      traffic.writtenBytes += data.length;
    },
    readNow: (offset, target) => {
      const served = volume.readNow(offset, target);
      if (served) traffic.readBytes += target.length;
      return served;
    },
    writeNow: (offset, data) => {
      const applied = volume.writeNow(offset, data);
      if (applied) traffic.writtenBytes += data.length;
      return applied;
    },
    trim: (offset, length, options) => volume.trim(offset, length, options),
    writeZeroes: (offset, length, options) => volume.writeZeroes(offset, length, options),
    flush: async () => {
      await volume.flush();
      if (!(await leaseStillHeld())) throw new StorageError("ESHUTDOWN", "this gateway lost the volume's lease: the flush is not acknowledged");
    },
    cache: (offset, length) => volume.cache(offset, length),
    blockStatus: (offset, length) => volume.blockStatus(offset, length),
  };
}
