import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../..", import.meta.url));

/** The built command's first file, loaded by every `stratus` run (built now if missing or stale). */
async function builtMain(): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, ["apps/nbd-gateway/bin/build.mjs"], { cwd: ROOT });
  const folder = stdout.trim().replace(/^(up to date|built): /, "");
  return readFile(path.join(ROOT, folder, "main.mjs"), "utf8");
}

// `stratus --help` and `volume list` are scripted by users: what this file holds is what each run parses.
describe("the stratus command's first file", () => {
  it("loads no package from node_modules and only the gateway lazily", async () => {
    const main = await builtMain();
    const staticImports = [...main.matchAll(/\bfrom\s*"([^"]+)"/g)].map((match) => match[1]!);
    expect(staticImports.length).toBeGreaterThan(0);
    expect(staticImports.filter((specifier) => !specifier.startsWith("node:"))).toEqual([]);
    const dynamicImports = [...main.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)].map((match) => match[1]);
    expect(dynamicImports).toEqual(["./gateway.mjs"]);
  }, 120_000);

  it("carries neither the database tables nor zod's other languages", async () => {
    const main = await builtMain();
    // Booleans, not toContain: a failure would print the whole file.
    expect(main.includes("pgTable("), "drizzle's table definitions").toBe(false);
    // A message of zod's German locale; English (the one used) stays.
    expect(main.includes("Ungültige Eingabe"), "zod's German messages").toBe(false);
    expect(main.includes("Invalid input"), "zod's English messages").toBe(true);
  }, 120_000);
});
