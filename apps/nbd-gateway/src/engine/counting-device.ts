import { StorageError, type BlockDevice, type Volume } from "@stratus/storage";
import { CMD_BLOCK_STATUS, CMD_CACHE, CMD_FLUSH, CMD_READ, CMD_TRIM, CMD_WRITE, CMD_WRITE_ZEROES, type VolumeMeter } from "../metrics/volume-meter";

/**
 * The engine as one connection sees it, counting into the volume's meter the bytes and operations it
 * reads and writes and how long each command took the engine (the request's time in the volume, not on
 * the wire). A FLUSH is acknowledged only while `leaseStillHeld` says so: a fenced holder's FLUSH fails.
 */
export function countingDevice(volume: Volume, meter: VolumeMeter, leaseStillHeld: () => Promise<boolean> = async () => true): BlockDevice {
  // Without metrics no clock is read per request: the read/write path stays as it was.
  const now: () => number = meter.timed ? () => performance.now() : () => 0;
  const timed = async <T>(command: number, run: () => Promise<T>): Promise<T> => {
    const started = now();
    try {
      return await run();
    } finally {
      meter.observe(command, (now() - started) / 1000);
    }
  };
  return {
    get size() {
      return volume.size;
    },
    capabilities: volume.capabilities,
    read: async (offset, target) => {
      const started = now();
      try {
        await volume.read(offset, target);
      } finally {
        meter.observe(CMD_READ, (now() - started) / 1000);
      }
      meter.readOps++;
      meter.readBytes += target.length;
    },
    write: async (offset, data, options) => {
      const started = now();
      try {
        await volume.write(offset, data, options);
      } finally {
        meter.observe(CMD_WRITE, (now() - started) / 1000);
      }
      meter.writeOps++;
      meter.writtenBytes += data.length;
    },
    // The synchronous fast paths (served from memory at once): timed too, in microseconds.
    readNow: (offset, target) => {
      const started = now();
      const served = volume.readNow(offset, target);
      if (served) {
        meter.observe(CMD_READ, (now() - started) / 1000);
        meter.readOps++;
        meter.readBytes += target.length;
      }
      return served;
    },
    writeNow: (offset, data) => {
      const started = now();
      const applied = volume.writeNow(offset, data);
      if (applied) {
        meter.observe(CMD_WRITE, (now() - started) / 1000);
        meter.writeOps++;
        meter.writtenBytes += data.length;
      }
      return applied;
    },
    trim: (offset, length, options) => timed(CMD_TRIM, () => volume.trim(offset, length, options)),
    writeZeroes: (offset, length, options) => timed(CMD_WRITE_ZEROES, () => volume.writeZeroes(offset, length, options)),
    flush: () =>
      timed(CMD_FLUSH, async () => {
        await volume.flush();
        if (!(await leaseStillHeld())) throw new StorageError("ESHUTDOWN", "this gateway lost the volume's lease: the flush is not acknowledged");
      }),
    cache: (offset, length) => timed(CMD_CACHE, () => volume.cache(offset, length)),
    blockStatus: (offset, length) => timed(CMD_BLOCK_STATUS, () => volume.blockStatus(offset, length)),
  };
}
