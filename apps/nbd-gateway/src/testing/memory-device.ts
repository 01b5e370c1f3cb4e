/**
 * A BlockDevice over memory for tests: sparse, stored as one Buffer per allocation unit that has
 * ever been written, so a fresh device is one hole and a large device costs only what is written.
 * Holes are tracked at `allocationUnit` granularity like the chunked Volume does. Faults can be
 * injected per operation (`failNext`) and operations can be delayed to provoke out-of-order replies.
 */
import { StorageError } from "@stratus/storage";
import type { BlockDevice, DeviceCapabilities, Extent, WriteOptions, ZeroOptions } from "@stratus/storage";

export type DeviceOperation = "read" | "write" | "trim" | "writeZeroes" | "flush" | "cache" | "blockStatus";

export interface MemoryDeviceOptions {
  size: number;
  allocationUnit?: number;
  capabilities?: Partial<Omit<DeviceCapabilities, "allocationUnit">>;
  /** Milliseconds to wait before each operation completes (e.g. seeded random per call). */
  delay?: (operation: DeviceOperation, offset: number, length: number) => number;
}

export class MemoryDevice implements BlockDevice {
  readonly size: number;
  readonly capabilities: DeviceCapabilities;
  /** Calls seen, for assertions (fua flags included). */
  readonly calls: { operation: DeviceOperation; offset: number; length: number; options?: ZeroOptions }[] = [];
  private readonly blocks = new Map<number, Buffer>();
  private readonly unit: number;
  private readonly faults: { operation: DeviceOperation; error: Error; remaining: number }[] = [];
  private readonly delay: MemoryDeviceOptions["delay"];

  constructor(options: MemoryDeviceOptions) {
    this.size = options.size;
    this.unit = options.allocationUnit ?? 64 * 1024;
    this.delay = options.delay;
    this.capabilities = {
      readOnly: false,
      canFlush: true,
      canTrim: true,
      canZero: true,
      canFastZero: true,
      canCache: true,
      canMultiConn: true,
      ...options.capabilities,
      allocationUnit: this.unit,
    };
  }

  /** The next `times` calls of `operation` reject with `error`. */
  failNext(operation: DeviceOperation, error: Error, times = 1): void {
    this.faults.push({ operation, error, remaining: times });
  }

  /** Number of allocation units holding data. */
  get allocatedUnits(): number {
    return this.blocks.size;
  }

  async read(offset: number, target: Uint8Array): Promise<void> {
    await this.enter("read", offset, target.length);
    this.readSync(offset, target);
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.enter("write", offset, data.length, options);
    this.checkWritable(offset, data.length);
    let done = 0;
    while (done < data.length) {
      const at = offset + done;
      const index = Math.floor(at / this.unit);
      const within = at - index * this.unit;
      const count = Math.min(data.length - done, this.unit - within);
      this.blockFor(index).set(data.subarray(done, done + count), within);
      done += count;
    }
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    await this.enter("trim", offset, length, options);
    this.checkWritable(offset, length);
    this.zeroRange(offset, length, true);
  }

  async writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void> {
    await this.enter("writeZeroes", offset, length, options);
    this.checkWritable(offset, length);
    if (options?.fastZero && !this.capabilities.canFastZero) {
      throw new StorageError("ENOTSUP", "fast zero not supported by this device");
    }
    this.zeroRange(offset, length, !options?.noHole);
  }

  async flush(): Promise<void> {
    await this.enter("flush", 0, 0);
  }

  async cache(offset: number, length: number): Promise<void> {
    await this.enter("cache", offset, length);
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    await this.enter("blockStatus", offset, length);
    const end = Math.min(this.size, offset + length);
    const extents: Extent[] = [];
    let at = offset;
    while (at < end) {
      const index = Math.floor(at / this.unit);
      const next = Math.min(end, (index + 1) * this.unit);
      const hole = !this.blocks.has(index);
      const last = extents[extents.length - 1];
      if (last && last.hole === hole) last.length += next - at;
      else extents.push({ length: next - at, hole, zero: hole });
      at = next;
    }
    return extents;
  }

  /** Synchronous read for test assertions. */
  readSync(offset: number, target: Uint8Array): void {
    let done = 0;
    while (done < target.length) {
      const at = offset + done;
      const index = Math.floor(at / this.unit);
      const within = at - index * this.unit;
      const count = Math.min(target.length - done, this.unit - within);
      const block = this.blocks.get(index);
      if (block) target.set(block.subarray(within, within + count), done);
      else target.fill(0, done, done + count);
      done += count;
    }
  }

  private zeroRange(offset: number, length: number, punch: boolean): void {
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const index = Math.floor(at / this.unit);
      const within = at - index * this.unit;
      const count = Math.min(length - done, this.unit - within);
      const whole = within === 0 && (count === this.unit || at + count === this.size);
      if (punch && whole) this.blocks.delete(index);
      else if (!punch) this.blockFor(index).fill(0, within, within + count);
      else this.blocks.get(index)?.fill(0, within, within + count);
      done += count;
    }
  }

  private blockFor(index: number): Buffer {
    let block = this.blocks.get(index);
    if (!block) {
      block = Buffer.alloc(this.unit);
      this.blocks.set(index, block);
    }
    return block;
  }

  private checkWritable(offset: number, length: number): void {
    if (this.capabilities.readOnly) throw new StorageError("EPERM", "device is read-only");
    if (offset + length > this.size) throw new StorageError("ENOSPC", "past the end of the device");
  }

  private async enter(operation: DeviceOperation, offset: number, length: number, options?: ZeroOptions): Promise<void> {
    this.calls.push({ operation, offset, length, options });
    const ms = this.delay?.(operation, offset, length) ?? 0;
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
    const fault = this.faults.find((f) => f.operation === operation && f.remaining > 0);
    if (fault) {
      fault.remaining--;
      throw fault.error;
    }
    if (operation !== "flush" && offset + length > this.size) {
      throw new StorageError("EINVAL", `range ${offset}+${length} past the end (${this.size})`);
    }
  }
}
