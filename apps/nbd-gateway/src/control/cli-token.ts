/**
 * The local CLI token of the embedded default: an ordinary API token (scope write) of the local admin
 * user, written to `<dataDir>/cli-token` (mode 0600, so only the user who runs Stratus can read it).
 * That file is what lets `stratus volume create` on the server's machine work without an account. The
 * file is reused across restarts while its token still authenticates; otherwise a new token replaces it.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { issueApiToken, isValidApiToken, type Runtime } from "@stratus/control";

export async function ensureCliToken(dataDir: string, runtime: Pick<Runtime, "database">, localAdminId: string): Promise<void> {
  const file = path.join(dataDir, "cli-token");
  const existing = await readFile(file, "utf8").then(
    (text) => text.trim(),
    () => undefined,
  );
  if (existing && (await isValidApiToken(runtime, existing))) return;
  const { secret } = await issueApiToken(runtime.database.db, localAdminId, { name: "local CLI (cli-token file)", scope: "write", expiresAt: null });
  await mkdir(dataDir, { recursive: true });
  await writeFile(`${file}.tmp`, `${secret}\n`, { mode: 0o600 });
  const { rename } = await import("node:fs/promises");
  await rename(`${file}.tmp`, file);
}
