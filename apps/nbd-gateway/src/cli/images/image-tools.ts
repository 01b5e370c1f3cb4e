/**
 * The image tools `stratus volume import/export` drives (qemu-img, qemu-nbd, nbdcopy, e2image, ntfsclone): found
 * on PATH with an error that names the Debian package to install, and `qemu-img info` read as JSON.
 * The CLI copies no block itself: these tools already know every image format, holes and zero runs.
 */
import { spawn } from "node:child_process";
import { access, open } from "node:fs/promises";
import path from "node:path";
import { CliError } from "../api-client";
import { loadCliPaths } from "../devices/env";

/** Each tool and the Debian package that ships it. */
export const IMAGE_TOOLS = {
  "qemu-img": "qemu-utils",
  "qemu-nbd": "qemu-utils",
  nbdcopy: "libnbd-bin",
  e2image: "e2fsprogs",
  dumpe2fs: "e2fsprogs",
  ntfsclone: "ntfs-3g",
} as const;
export type ImageTool = keyof typeof IMAGE_TOOLS;

const SEARCH_EXTRA = ["/usr/sbin", "/sbin"];

/** The tool's path, or a CliError naming its package. */
export async function requireTool(tool: ImageTool, searchPath = loadCliPaths().searchPath): Promise<string> {
  for (const dir of [...searchPath, ...SEARCH_EXTRA]) {
    const candidate = path.join(dir, tool);
    if (
      await access(candidate, 1).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new CliError(`${tool} is not installed: it comes with the Debian package ${IMAGE_TOOLS[tool]} (sudo apt-get install ${IMAGE_TOOLS[tool]})`);
}

/** Runs a tool to completion and returns its stdout; a failure becomes a CliError with its stderr. */
export function capture(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.once("error", (error) => reject(new CliError(`cannot run ${path.basename(file)}: ${error.message}`)));
    child.once("close", (code) => (code === 0 ? resolve(out) : reject(new CliError(`${path.basename(file)} failed: ${err.trim() || `exit ${code}`}`))));
  });
}

export interface ImageInfo {
  format: string;
  virtualSize: number;
}

/** `qemu-img info` of a local image file (format probed, as qemu-img convert would). */
export async function imageInfo(file: string): Promise<ImageInfo> {
  const qemuImg = await requireTool("qemu-img");
  const out = await capture(qemuImg, ["info", "--output=json", file]).catch((error: unknown) => {
    const hint =
      /^https?:/i.test(file) && /Unknown protocol|not whitelisted|curl/i.test((error as Error).message)
        ? " (http(s) needs qemu's curl driver: the Debian package qemu-block-extra)"
        : "";
    throw new CliError(`cannot read ${file} as a disk image: ${(error as Error).message}${hint}`);
  });
  const json = JSON.parse(out) as { format?: string; "virtual-size"?: number };
  if (!json.format || typeof json["virtual-size"] !== "number") throw new CliError(`qemu-img info gave no format or size for ${file}`);
  return { format: json.format, virtualSize: json["virtual-size"] };
}

/** The volume size for an image: its virtual size rounded up to the 512-byte sectors a volume is made of. */
export function volumeSizeFor(virtualSize: number): number {
  return Math.max(512, Math.ceil(virtualSize / 512) * 512);
}

/** The filesystem a raw image file holds, from its boot sector and superblock: what `--used-only` can read. */
export async function filesystemOf(file: string): Promise<"ntfs" | "ext" | undefined> {
  const handle = await open(file, "r");
  try {
    const head = Buffer.alloc(2048);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    // NTFS: the OEM id "NTFS    " at byte 3 of the boot sector; ext2/3/4: magic 0xEF53 at 1024 + 56.
    if (bytesRead >= 11 && head.subarray(3, 11).toString("latin1") === "NTFS    ") return "ntfs";
    if (bytesRead >= 1082 && head.readUInt16LE(1080) === 0xef53) return "ext";
    return undefined;
  } finally {
    await handle.close();
  }
}
