import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { makeDataDirPrivate } from "./private-data-dir";

const mode = async (file: string) => (await stat(file)).mode & 0o777;

describe("makeDataDirPrivate", () => {
  let root: string | undefined;
  afterEach(() => (root ? rm(root, { recursive: true, force: true }) : undefined));

  it("makes the data dir 0700 and every cache directory 0700 and file 0600, at every start", async () => {
    root = await mkdtemp(path.join(tmpdir(), "stratus-private-"));
    const dataDir = path.join(root, "data");
    const cacheDir = path.join(dataDir, "cache");
    await mkdir(path.join(cacheDir, "vol_a", "chunks"), { recursive: true, mode: 0o755 });
    await writeFile(path.join(cacheDir, "vol_a", "chunks", "0000"), "decrypted bytes", { mode: 0o644 });
    await writeFile(path.join(cacheDir, "vol_a", "journal"), "j", { mode: 0o666 });
    await makeDataDirPrivate(dataDir, cacheDir);
    expect(await mode(dataDir)).toBe(0o700);
    expect(await mode(cacheDir)).toBe(0o700);
    expect(await mode(path.join(cacheDir, "vol_a"))).toBe(0o700);
    expect(await mode(path.join(cacheDir, "vol_a", "chunks"))).toBe(0o700);
    expect(await mode(path.join(cacheDir, "vol_a", "chunks", "0000"))).toBe(0o600);
    expect(await mode(path.join(cacheDir, "vol_a", "journal"))).toBe(0o600);

    // A fresh data dir too.
    const fresh = path.join(root, "fresh");
    await makeDataDirPrivate(fresh, path.join(fresh, "cache"));
    expect([await mode(fresh), await mode(path.join(fresh, "cache"))]).toEqual([0o700, 0o700]);
  });
});
