/**
 * A seeded directory tree for filesystem tests (nested folders, files of varied sizes, symlinks to
 * files and folders, one dangling link) and a checksum of a tree that covers names, types, modes,
 * contents and link targets.
 */
import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { seededBytes, seededRandom } from "./images";

export interface TreeSpec {
  seed: number;
  files: number;
  symlinks: number;
}

export interface TreeStats {
  files: number;
  symlinks: number;
  directories: number;
  bytes: number;
}

export async function makeTree(root: string, { seed, files, symlinks }: TreeSpec): Promise<TreeStats> {
  const random = seededRandom(seed);
  const bytes = seededBytes(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const directories = [""];
  for (let i = 0; i < 40; i++) {
    const parent = pick(directories);
    directories.push(path.join(parent, `dir-${i}`));
  }
  for (const dir of directories) await mkdir(path.join(root, dir), { recursive: true });

  const filePaths: string[] = [];
  let total = 0;
  for (let i = 0; i < files; i++) {
    // Mostly small files, some empty, a few of a few hundred KiB: exercises inline data and extents.
    const r = random();
    const size = r < 0.05 ? 0 : r < 0.9 ? Math.floor(random() * 16384) : Math.floor(random() * 512 * 1024);
    const file = path.join(pick(directories), `file-${i}.bin`);
    await writeFile(path.join(root, file), bytes(size), { mode: random() < 0.2 ? 0o755 : 0o644 });
    filePaths.push(file);
    total += size;
  }
  for (let i = 0; i < symlinks; i++) {
    const from = path.join(pick(directories), `link-${i}`);
    const target = i === 0 ? "does-not-exist" : random() < 0.7 ? pick(filePaths) : pick(directories.slice(1));
    const relative = i === 0 ? target : path.relative(path.dirname(path.join(root, from)), path.join(root, target));
    await symlink(relative === "" ? "." : relative, path.join(root, from)); // "" = a link to its own folder
  }
  return { files, symlinks, directories: directories.length, bytes: total };
}

/** Sorted lines "path type mode detail" for every entry below `root` (detail: sha256 or link target). */
export async function treeChecksums(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(root, relative));
    for (const name of entries.sort()) {
      if (relative === "" && name === "lost+found") continue; // made by mkfs, not part of the tree
      const rel = path.join(relative, name);
      const full = path.join(root, rel);
      const info = await lstat(full);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isSymbolicLink()) {
        lines.push(`${rel} link ${mode} ${await readlink(full)}`);
      } else if (info.isDirectory()) {
        lines.push(`${rel} dir ${mode}`);
        await walk(rel);
      } else if (info.isFile()) {
        const digest = createHash("sha256")
          .update(await readFile(full))
          .digest("hex");
        lines.push(`${rel} file ${mode} ${info.size} ${digest}`);
      } else {
        lines.push(`${rel} other ${mode}`);
      }
    }
  };
  await walk("");
  return lines;
}
