/** The session-signing secret: AUTH_SECRET, or one generated once into <dataDir>/auth-secret (0600). */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export async function loadAuthSecret(configured: string | undefined, dataDir: string): Promise<string> {
  if (configured) return configured;
  const file = path.join(dataDir, "auth-secret");
  const existing = await readFile(file, "utf8").then(
    (text) => text.trim(),
    () => "",
  );
  if (existing.length >= 32) return existing;
  const secret = randomBytes(32).toString("base64url");
  try {
    // wx: two processes starting at once must end up with one secret.
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: "wx" });
    return secret;
  } catch {
    return (await readFile(file, "utf8")).trim();
  }
}
