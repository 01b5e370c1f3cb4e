import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { closeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SpareFiles } from "./spare-files";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "stratus-spares-"));
  dirs.push(dir);
  return dir;
}

describe("SpareFiles", () => {
  it("creates a file under its final name only once prepared, reusing a retired one", () => {
    const root = tempDir();
    const spares = new SpareFiles(root);
    const target = path.join(root, "chunk");
    const fd = spares.create(target, (created) => {
      expect(existsSync(target)).toBe(false); // not named before it is prepared
      writeSync(created, Buffer.from("hello"));
    });
    closeSync(fd);
    expect(readFileSync(target, "utf8")).toBe("hello");
    spares.retire(target);
    expect(existsSync(target)).toBe(false);
    expect(spares.count).toBe(1);
    const again = path.join(root, "again");
    closeSync(spares.create(again, () => {}));
    expect(spares.count).toBe(0);
    expect(statSync(again).size).toBe(0); // a retired file comes back empty
  });

  it("leaves nothing behind when preparing fails", () => {
    const root = tempDir();
    const spares = new SpareFiles(root);
    expect(() =>
      spares.create(path.join(root, "chunk"), () => {
        throw new Error("refused");
      }),
    ).toThrow("refused");
    expect(readdirSync(root)).toEqual([]);
  });

  it("takes over emptied spares at start and deletes anything else found", () => {
    const root = tempDir();
    writeFileSync(path.join(root, "s7"), "stale bytes");
    writeFileSync(path.join(root, "fsomething"), "a fill cut short");
    const spares = new SpareFiles(root);
    expect(spares.count).toBe(1);
    expect(readdirSync(root)).toEqual(["s7"]);
    expect(statSync(path.join(root, "s7")).size).toBe(0);
    const claimed = spares.claim();
    expect(claimed.exists).toBe(true);
    expect(path.basename(claimed.path).startsWith("f")).toBe(true);
    expect(spares.claim().exists).toBe(false); // none left: a new file
  });
});
