import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { closePinned, datasyncPinned, isPinned } from "./pinned-fds";

describe("pinned descriptors", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "pinned-fds-"));
    writeFileSync(path.join(dir, "a"), "a");
    writeFileSync(path.join(dir, "b"), "b");
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("keeps a descriptor closed during a sync open until the sync returns, so its number is not reused", async () => {
    const fd = openSync(path.join(dir, "a"), "r+");
    const synced = datasyncPinned(fd);
    closePinned(fd);
    expect(isPinned(fd)).toBe(true);
    // Still open: a file opened now gets another number, so the pending sync cannot hit it.
    expect(() => fstatSync(fd)).not.toThrow();
    const other = openSync(path.join(dir, "b"), "r");
    expect(other).not.toBe(fd);
    await synced;
    expect(isPinned(fd)).toBe(false);
    expect(() => fstatSync(fd)).toThrow(expect.objectContaining({ code: "EBADF" }));
    closeSync(other);
  });

  it("closes at once when nothing runs on it, and waits for the last of several syncs", async () => {
    const idle = openSync(path.join(dir, "a"), "r+");
    closePinned(idle);
    expect(() => fstatSync(idle)).toThrow(expect.objectContaining({ code: "EBADF" }));

    const fd = openSync(path.join(dir, "b"), "r+");
    const first = datasyncPinned(fd);
    const second = datasyncPinned(fd);
    closePinned(fd);
    await first;
    await second;
    expect(() => fstatSync(fd)).toThrow(expect.objectContaining({ code: "EBADF" }));
  });

  it("reports a failed sync and leaves the descriptor to its owner", async () => {
    const fd = openSync(path.join(dir, "a"), "r");
    closeSync(fd);
    await expect(datasyncPinned(fd)).rejects.toMatchObject({ code: "EBADF" });
    expect(isPinned(fd)).toBe(false);
  });
});
