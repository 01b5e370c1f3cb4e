import { describe, expect, it } from "vitest";
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
  NBD_FLAG_READ_ONLY,
} from "../protocol/constants";
import { transmissionFlagsFor } from "./handshake";
import { validateRequest } from "./validate";
import type { ValidationContext } from "./validate";

const all = transmissionFlagsFor({
  readOnly: false,
  canFlush: true,
  canTrim: true,
  canZero: true,
  canFastZero: true,
  canCache: true,
  canMultiConn: true,
  allocationUnit: 4096,
});
const ctx: ValidationContext = { size: 1 << 20, transmissionFlags: all, structuredReplies: true, metaContextSelected: true, maxPayload: 65536 };
const req = (type: number, flags: number, offset: number, length: number) => ({ type, flags, offset, length, handleHi: 0, handleLo: 1 });
const errno = (r: ReturnType<typeof req>, c: ValidationContext = ctx) => validateRequest(r, c)?.errno ?? 0;

describe("validateRequest", () => {
  it.each([
    ["read inside", req(NBD_CMD_READ, 0, 0, 4096), 0],
    ["read to the last byte", req(NBD_CMD_READ, 0, (1 << 20) - 1, 1), 0],
    ["read past the end", req(NBD_CMD_READ, 0, (1 << 20) - 1, 2), NBD_EINVAL],
    ["write past the end", req(NBD_CMD_WRITE, 0, 1 << 20, 1), NBD_ENOSPC],
    ["write zeroes past the end", req(NBD_CMD_WRITE_ZEROES, 0, 1 << 20, 1), NBD_ENOSPC],
    ["trim past the end", req(NBD_CMD_TRIM, 0, 1 << 20, 1), NBD_EINVAL],
    ["cache past the end", req(NBD_CMD_CACHE, 0, 1 << 20, 1), NBD_EINVAL],
    ["block status past the end", req(NBD_CMD_BLOCK_STATUS, 0, 1 << 20, 1), NBD_EINVAL],
    ["read above max payload", req(NBD_CMD_READ, 0, 0, 65537), NBD_EINVAL],
    ["trim above max payload is fine", req(NBD_CMD_TRIM, 0, 0, 1 << 20), 0],
    ["FUA on any command", req(NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 1), 0],
    ["NO_HOLE + FAST_ZERO on write zeroes", req(NBD_CMD_WRITE_ZEROES, NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO, 0, 1), 0],
    ["NO_HOLE on write", req(NBD_CMD_WRITE, NBD_CMD_FLAG_NO_HOLE, 0, 1), NBD_EINVAL],
    ["REQ_ONE on read", req(NBD_CMD_READ, NBD_CMD_FLAG_REQ_ONE, 0, 1), NBD_EINVAL],
    ["REQ_ONE on block status", req(NBD_CMD_BLOCK_STATUS, NBD_CMD_FLAG_REQ_ONE, 0, 1), 0],
    ["unknown flag", req(NBD_CMD_READ, 1 << 9, 0, 1), NBD_EINVAL],
    ["unknown command", req(12, 0, 0, 0), NBD_EINVAL],
    ["flush", req(NBD_CMD_FLUSH, 0, 0, 0), 0],
    ["flush with a length", req(NBD_CMD_FLUSH, 0, 0, 1), NBD_EINVAL],
  ])("%s", (_name, r, expected) => {
    expect(errno(r)).toBe(expected);
  });

  it("refuses writes, trims and zeroes on a read-only export with EPERM, before the range check", () => {
    const ro = {
      ...ctx,
      transmissionFlags: transmissionFlagsFor({
        readOnly: true,
        canFlush: true,
        canTrim: true,
        canZero: true,
        canFastZero: true,
        canCache: true,
        canMultiConn: true,
        allocationUnit: 1,
      }),
    };
    expect(ro.transmissionFlags & NBD_FLAG_READ_ONLY).toBeTruthy();
    for (const type of [NBD_CMD_WRITE, NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES]) expect(errno(req(type, 0, 1 << 30, 1), ro)).toBe(NBD_EPERM);
    expect(errno(req(NBD_CMD_READ, 0, 0, 1), ro)).toBe(0);
  });

  it("refuses what was not advertised or negotiated", () => {
    const bare = { ...ctx, transmissionFlags: 1, metaContextSelected: false };
    expect(errno(req(NBD_CMD_FLUSH, 0, 0, 0), bare)).toBe(NBD_EINVAL);
    expect(errno(req(NBD_CMD_TRIM, 0, 0, 1), bare)).toBe(NBD_EINVAL);
    expect(errno(req(NBD_CMD_WRITE_ZEROES, 0, 0, 1), bare)).toBe(NBD_EINVAL);
    expect(errno(req(NBD_CMD_BLOCK_STATUS, 0, 0, 1), bare)).toBe(NBD_EINVAL);
    expect(errno(req(NBD_CMD_READ, NBD_CMD_FLAG_FUA, 0, 1), bare)).toBe(NBD_EINVAL);
    expect(errno(req(NBD_CMD_CACHE, 0, 0, 1), bare)).toBe(0);
  });
});
