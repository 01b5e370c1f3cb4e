/**
 * The data directory holds the master key, the embedded database and the chunk cache, whose files are
 * volumes' data decrypted. At every start it is made 0700, and everything under the cache 0700
 * (directories) / 0600 (files), whatever an earlier version, a restore or a umask left there. Files the
 * cache creates later sit inside those private directories.
 */
import { chmod, mkdir, readdir } from "node:fs/promises";
import path from "node:path";

export async function makeDataDirPrivate(dataDir: string, cacheDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await chmod(dataDir, 0o700);
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  await makeTreePrivate(cacheDir);
}

async function makeTreePrivate(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await makeTreePrivate(full);
    else if (entry.isFile()) await chmod(full, 0o600);
  }
}
