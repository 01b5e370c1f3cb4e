/** The browser's tar writer, read back by GNU tar: names, contents and modes survive. */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { makeTar } from "./tar";

const exec = promisify(execFile);

describe("makeTar", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("writes an archive tar lists, verifies and unpacks with each file's mode", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "stratus-tar-"));
    dirs.push(dir);
    const key = "-----BEGIN PRIVATE KEY-----\nMIG…\n-----END PRIVATE KEY-----\n";
    const long = "x".repeat(1500); // spans blocks
    const archive = makeTar(
      [
        { name: "laptop/", mode: 0o700 },
        { name: "laptop/keys.psk", content: "dev_abc:00ff\n", mode: 0o600 },
        { name: "laptop/client-key.pem", content: key, mode: 0o600 },
        { name: "laptop/ca-cert.pem", content: long, mode: 0o644 },
        { name: "laptop/empty", content: "", mode: 0o644 },
      ],
      1_700_000_000,
    );
    expect(archive.length % 512).toBe(0);
    await writeFile(path.join(dir, "bundle.tar"), archive);
    const listing = (await exec("tar", ["-tvf", "bundle.tar"], { cwd: dir })).stdout;
    expect(listing).toMatch(/^drwx------ .* laptop\/$/m);
    expect(listing).toMatch(/^-rw------- .* 13 .* laptop\/keys\.psk$/m);
    await exec("tar", ["-xf", "bundle.tar"], { cwd: dir });
    expect(await readFile(path.join(dir, "laptop/keys.psk"), "utf8")).toBe("dev_abc:00ff\n");
    expect(await readFile(path.join(dir, "laptop/client-key.pem"), "utf8")).toBe(key);
    expect(await readFile(path.join(dir, "laptop/ca-cert.pem"), "utf8")).toBe(long);
    expect((await stat(path.join(dir, "laptop/client-key.pem"))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, "laptop"))).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, "laptop/ca-cert.pem"))).mtimeMs).toBe(1_700_000_000_000);
  });

  it("refuses names ustar cannot hold", () => {
    expect(() => makeTar([{ name: `${"a".repeat(100)}`, mode: 0o600 }])).toThrow(/unsupported name/);
    expect(() => makeTar([{ name: "é", mode: 0o600 }])).toThrow(/unsupported name/);
  });
});
