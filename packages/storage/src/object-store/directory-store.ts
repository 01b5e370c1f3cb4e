/**
 * An object store in a local directory: each key is the same relative file path under `root`.
 * `put` writes a temp file beside the target, fsyncs it, renames it over and fsyncs the directory,
 * so after a crash an object is the old bytes or the new, never torn; temp files carry a reserved
 * prefix that `list` hides. Listing walks the tree in key byte order (a directory sorts as its
 * name plus "/"), pruning what is outside the prefix or before `startAfter`.
 */
import { randomBytes } from "node:crypto";
import type { Dirent } from "node:fs";
import { lstat, mkdir, open, readdir, rename, rmdir, unlink } from "node:fs/promises";
import path from "node:path";
import { StorageError, isStorageError } from "../errors";
import type { ByteRange, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from "./object-store";
import { clampRange, compareKeys, validateListLimit } from "./object-store-helpers";

const TEMP_PREFIX = ".stratus-tmp-";
const DELETE_PARALLELISM = 32;

export interface DirectoryObjectStoreOptions {
  /** Directory that holds the objects; created when missing. */
  root: string;
}

export class DirectoryObjectStore implements ObjectStore {
  readonly signsPayload: boolean = false;
  private readonly root: string;

  /** `new DirectoryObjectStore("/data/bucket")` or `new DirectoryObjectStore({ root })`. */
  constructor(options: DirectoryObjectStoreOptions | string) {
    this.root = path.resolve(typeof options === "string" ? options : options.root);
  }

  async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    try {
      await this.write(key, body);
    } finally {
      options?.onBodyReleased?.();
    }
  }

  private async write(key: string, body: Uint8Array): Promise<void> {
    const file = this.pathFor(key);
    const dir = path.dirname(file);
    let temp: string | undefined;
    try {
      const handle = await this.openTemp(dir, (name) => (temp = name));
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp!, file);
      temp = undefined;
      await fsyncDirectory(dir);
    } catch (error) {
      if (temp !== undefined) await unlink(temp).catch(() => {});
      throw wrapFsError(error, `put ${key}`);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Buffer | undefined> {
    const file = this.pathFor(key);
    let handle;
    try {
      handle = await open(file, "r");
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw wrapFsError(error, `get ${key}`);
    }
    try {
      const { size } = await handle.stat();
      const { start, end } = clampRange(size, range);
      const body = Buffer.allocUnsafe(end - start);
      let filled = 0;
      while (filled < body.length) {
        const { bytesRead } = await handle.read(body, filled, body.length - filled, start + filled);
        if (bytesRead === 0) break; // shrank underneath us: cannot happen with rename-only writes
        filled += bytesRead;
      }
      return filled === body.length ? body : body.subarray(0, filled);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw wrapFsError(error, `get ${key}`);
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const stats = await lstat(this.pathFor(key));
      return stats.isFile() ? { key, size: stats.size } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw wrapFsError(error, `head ${key}`);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    const files = keys.map((key) => this.pathFor(key));
    for (let i = 0; i < files.length; i += DELETE_PARALLELISM) {
      await Promise.all(files.slice(i, i + DELETE_PARALLELISM).map((file) => this.deleteFile(file)));
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = validateListLimit(options.limit);
    const { prefix, startAfter } = options;
    if (prefix.startsWith("/") || prefix.split("/").some((segment) => segment === "..")) {
      throw new StorageError("EINVAL", `invalid list prefix ${JSON.stringify(prefix)}`);
    }
    // Start at the deepest directory the prefix names completely ("vol/v1/c/0" starts in vol/v1/c/).
    const baseKey = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    const found: ObjectInfo[] = [];
    try {
      await this.walk(baseKey, prefix, startAfter, limit + 1, found);
    } catch (error) {
      throw wrapFsError(error, `list ${prefix}`);
    }
    return { objects: found.slice(0, limit), truncated: found.length > limit };
  }

  async close(): Promise<void> {}

  /** Maps a key to its file, refusing keys that could escape the root or alias another key. */
  private pathFor(key: string): string {
    validateKey(key);
    return path.join(this.root, ...key.split("/"));
  }

  /** Creates the directory (fsyncing new parents) and a fresh temp file in it. */
  private async openTemp(dir: string, remember: (temp: string) => void) {
    // A concurrent deleteMany may remove an empty directory between mkdir and open: retry.
    for (let attempt = 0; ; attempt++) {
      const firstCreated = await mkdir(dir, { recursive: true });
      if (firstCreated !== undefined) await fsyncNewDirectories(firstCreated, dir);
      const temp = path.join(dir, TEMP_PREFIX + randomBytes(8).toString("hex"));
      try {
        const handle = await open(temp, "wx");
        remember(temp);
        return handle;
      } catch (error) {
        if (!isMissing(error) || attempt >= 5) throw error;
      }
    }
  }

  private async deleteFile(file: string): Promise<void> {
    try {
      await unlink(file);
    } catch (error) {
      if (isMissing(error)) return;
      throw wrapFsError(error, `delete ${path.relative(this.root, file)}`);
    }
    // Leave no empty directories behind (a trimmed volume leaves nothing); stop at the first
    // directory that still holds something.
    for (let dir = path.dirname(file); dir.startsWith(this.root + path.sep); dir = path.dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        return;
      }
    }
  }

  private async walk(dirKey: string, prefix: string, startAfter: string | undefined, want: number, found: ObjectInfo[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(path.join(this.root, ...dirKey.split("/")), { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return;
      throw error;
    }
    const items = entries
      .filter((entry) => !entry.name.startsWith(TEMP_PREFIX) && (entry.isDirectory() || entry.isFile()))
      .map((entry) => ({ key: dirKey + entry.name + (entry.isDirectory() ? "/" : ""), isDirectory: entry.isDirectory() }))
      .sort((a, b) => compareKeys(a.key, b.key));
    for (const item of items) {
      if (found.length >= want) return;
      if (item.isDirectory) {
        if (!item.key.startsWith(prefix) && !prefix.startsWith(item.key)) continue;
        // Every key under D/ is before startAfter when startAfter >= D/ and does not start with D/.
        if (startAfter !== undefined && compareKeys(item.key, startAfter) <= 0 && !startAfter.startsWith(item.key)) continue;
        await this.walk(item.key, prefix, startAfter, want, found);
      } else {
        if (!item.key.startsWith(prefix)) continue;
        if (startAfter !== undefined && compareKeys(item.key, startAfter) <= 0) continue;
        try {
          const stats = await lstat(path.join(this.root, ...item.key.split("/")));
          found.push({ key: item.key, size: stats.size });
        } catch (error) {
          if (!isMissing(error)) throw error; // deleted while listing: skip it
        }
      }
    }
  }
}

/** Keys are relative paths of non-empty segments; nothing that resolves outside the root. */
export function validateKey(key: string): void {
  const bad =
    key.length === 0 ||
    key.includes("\0") ||
    key.startsWith("/") ||
    key.split("/").some((segment) => segment === "" || segment === "." || segment === ".." || segment.startsWith(TEMP_PREFIX));
  if (bad) throw new StorageError("EINVAL", `invalid object key ${JSON.stringify(key)}`);
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** After `mkdir -p` created `first`..`last`, make each new entry durable in its parent. */
async function fsyncNewDirectories(first: string, last: string): Promise<void> {
  const dirs: string[] = [];
  for (let dir = last; dir.length >= first.length; dir = path.dirname(dir)) dirs.push(path.dirname(dir));
  for (const dir of dirs) await fsyncDirectory(dir);
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR";
}

function wrapFsError(error: unknown, what: string): StorageError {
  if (isStorageError(error)) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOTDIR" || code === "EISDIR" || code === "EEXIST") {
    return new StorageError("EINVAL", `${what}: key conflicts with an existing key's path (${code})`, { cause: error });
  }
  if (code === "ENOSPC") return new StorageError("ENOSPC", `${what}: no space left on device`, { cause: error });
  return new StorageError("EIO", `${what} failed: ${code ?? String(error)}`, { cause: error });
}
