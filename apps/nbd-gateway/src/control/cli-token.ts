/**
 * The local admin token of the embedded default. The CLI on the same machine reads it from the
 * data directory (mode 0600, so only the user who runs Stratus can), which is what lets
 * `stratus volume create` reach the running server without an account. The server keeps only
 * its SHA-256 and compares in constant time. API tokens for remote scripting arrive with the
 * control-plane issue and go through the same check.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export interface TokenVerifier {
  verify(presented: string | undefined): boolean;
}

const digest = (value: string) => createHash("sha256").update(value).digest();

/** Reuses the token file if one exists (scripts keep working across restarts), else makes one. */
export async function ensureCliToken(dataDir: string): Promise<TokenVerifier> {
  const file = path.join(dataDir, "cli-token");
  let token: string;
  try {
    token = (await readFile(file, "utf8")).trim();
    if (token.length < 32) throw new Error("short");
  } catch {
    token = `stratus_local_${randomBytes(32).toString("base64url")}`;
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, `${token}\n`, { mode: 0o600 });
  }
  const expected = digest(token);
  return {
    verify(presented) {
      if (!presented) return false;
      return timingSafeEqual(digest(presented), expected);
    },
  };
}
