/**
 * What the NBD server serves: a byte-addressed device with the operations NBD transmits.
 * `Volume` implements it over an object store; tests implement it over a plain buffer.
 * Offsets and lengths are plain numbers (safe up to 2^53 bytes): no BigInt on the hot path.
 * The server validates ranges and flags before calling in (offset + length <= size).
 */
export interface BlockDevice {
  readonly size: number;
  readonly capabilities: DeviceCapabilities;
  /** Fills `target` with the bytes at `offset` (length = target.length). */
  read(offset: number, target: Uint8Array): Promise<void>;
  /**
   * Optional fast path: when the whole range is data at hand (cached, no hole, no fetch), fills
   * `target` synchronously and returns true. False: nothing was served (target may hold scraps),
   * call read(). Serving without promises matters: each costs, more so with async hooks enabled.
   */
  readNow?(offset: number, target: Uint8Array): boolean;
  /**
   * Optional fast path: when the write can be applied at once (no fetch, no wait for dirty room),
   * applies it synchronously and returns true; false: nothing was applied, call write(). Not for FUA.
   */
  writeNow?(offset: number, data: Uint8Array): boolean;
  /** Writes `data` at `offset`; with `fua`, durable before resolving (as a flush would make it). */
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void>;
  /** Discards the range: it reads as zeros afterwards and whole chunks free their storage. */
  trim(offset: number, length: number, options?: WriteOptions): Promise<void>;
  /** Makes the range read as zeros; may punch holes unless `noHole`. */
  writeZeroes(offset: number, length: number, options?: ZeroOptions): Promise<void>;
  /** Every write completed before this call is durable when it resolves. */
  flush(): Promise<void>;
  /** Hint: fetch the range into the cache. */
  cache(offset: number, length: number): Promise<void>;
  /** Allocation map of the range, extents in order covering at least `offset`..`offset+1`. */
  blockStatus(offset: number, length: number): Promise<Extent[]>;
}

export interface DeviceCapabilities {
  readOnly: boolean;
  canFlush: boolean;
  canTrim: boolean;
  canZero: boolean;
  /** WRITE_ZEROES with FAST_ZERO can be honoured (zeroing is cheaper than writing). */
  canFastZero: boolean;
  canCache: boolean;
  /** Several connections may share this device and see each other's writes after a flush. */
  canMultiConn: boolean;
  /** Allocation granularity; BLOCK_STATUS extents align to it. */
  allocationUnit: number;
}

export interface WriteOptions {
  fua?: boolean;
}

export interface ZeroOptions extends WriteOptions {
  /** The client wants allocated zeros (NBD_CMD_FLAG_NO_HOLE). */
  noHole?: boolean;
  /** Fail with ENOTSUP rather than write zeros slowly (NBD_CMD_FLAG_FAST_ZERO). */
  fastZero?: boolean;
}

export interface Extent {
  length: number;
  /** No storage allocated (NBD_STATE_HOLE). */
  hole: boolean;
  /** Reads as zeros (NBD_STATE_ZERO). */
  zero: boolean;
}
