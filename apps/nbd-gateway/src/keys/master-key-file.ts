/**
 * The deployment's master key: STRATUS_MASTER_KEY when set, else `<dataDir>/master.key`, generated once
 * (mode 0600) in the embedded default. It only unwraps volumes' auto-unlock slots. The log names the
 * file and the key's id (a hash prefix), never the key.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { formatMasterKey, generateMasterKey, masterKeyId, parseMasterKey } from "@stratus/storage";
import { StartupError } from "../gateway/open-store";
import type { Logger } from "../logger";

export interface MasterKey {
  key: Buffer;
  /** sha256(key) prefix: safe to log and stored in slots. */
  id: string;
}

export async function loadMasterKey(options: { configured: Buffer | undefined; dataDir: string }, logger: Logger): Promise<MasterKey> {
  if (options.configured) return { key: options.configured, id: masterKeyId(options.configured) };
  const file = path.join(options.dataDir, "master.key");
  let text: string | undefined;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new StartupError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (text !== undefined) {
    try {
      const key = parseMasterKey(text);
      return { key, id: masterKeyId(key) };
    } catch (error) {
      throw new StartupError(`${file} does not hold a master key (32 bytes in base64)`, { cause: error });
    }
  }
  const key = generateMasterKey();
  // wx: never overwrite a key another start wrote meanwhile (that would lock every volume out).
  await writeFile(file, `${formatMasterKey(key)}\n`, { mode: 0o600, flag: "wx" });
  const id = masterKeyId(key);
  logger.warn(
    { file, masterKeyId: id },
    "generated a master key for auto-unlock; back it up (or set STRATUS_MASTER_KEY): volumes without a passphrase cannot be opened without it",
  );
  return { key, id };
}
