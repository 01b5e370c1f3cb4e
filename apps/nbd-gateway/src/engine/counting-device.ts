import type { BlockDevice, Volume } from "@stratus/storage";
import type { Engine } from "./open-engine";

/** The engine as one connection sees it, counting the bytes it reads and writes. */
export function countingDevice(volume: Volume, traffic: Engine["traffic"]): BlockDevice {
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
    flush: () => volume.flush(),
    cache: (offset, length) => volume.cache(offset, length),
    blockStatus: (offset, length) => volume.blockStatus(offset, length),
  };
}
