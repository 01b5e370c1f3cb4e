/**
 * The deployment's master key: STRATUS_MASTER_KEY when set, else `<dataDir>/master.key`, generated once
 * (mode 0600) in the embedded default. It only unwraps volumes' auto-unlock slots and unlock grants. The
 * log names the file and the key's id (a hash prefix), never the key.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { formatMasterKey, generateMasterKey, masterKeyId, parseMasterKey } from "@stratus/storage";
import type { MasterKey, VerbLogger } from "../context";
import { StartupError } from "../open-store";

export async function loadMasterKey(options: { configured: Buffer | undefined; dataDir: string }, logger: Pick<VerbLogger, "warn">): Promise<MasterKey> {
  if (options.configured) return { key: options.configured, id: masterKeyId(options.configured) };
  const file = path.join(options.dataDir, "master.key");
  const existing = await readKeyFile(file);
  if (existing) return existing;
  const key = generateMasterKey();
  try {
    // wx: never overwrite a key another process wrote meanwhile (that would lock every volume out).
    await writeFile(file, `${formatMasterKey(key)}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return (await readKeyFile(file))!;
    throw new StartupError(`cannot write ${file}: ${(error as Error).message}`, { cause: error });
  }
  const id = masterKeyId(key);
  logger.warn(
    { file, masterKeyId: id },
    "generated a master key for auto-unlock; back it up (or set STRATUS_MASTER_KEY): volumes without a passphrase cannot be opened without it",
  );
  return { key, id };
}

async function readKeyFile(file: string): Promise<MasterKey | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StartupError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const key = parseMasterKey(text);
    return { key, id: masterKeyId(key) };
  } catch (error) {
    throw new StartupError(`${file} does not hold a master key (32 bytes in base64)`, { cause: error });
  }
}
