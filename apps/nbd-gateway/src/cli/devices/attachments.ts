/**
 * What `stratus attach` started on this machine, one small JSON record per attachment under
 * ~/.config/stratus/attachments (0700), so `stratus detach VOLUME|DIR|/dev/nbdN` can undo it later
 * from another shell. Named by a hash of the mount point or device, so attaching twice to one place
 * is refused instead of silently stacking.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";

const attachmentSchema = z.object({
  volume: z.string(),
  deviceId: z.string(),
  /** fuse: nbdfuse serving MOUNTDIR/disk.img; nbd: the kernel client on a /dev/nbdN. */
  kind: z.enum(["fuse", "nbd"]),
  /** The mount point (fuse) or the device node (nbd). */
  target: z.string(),
  pid: z.number().int().optional(),
  at: z.string(),
});
export type Attachment = z.infer<typeof attachmentSchema>;

export function attachmentFiles(dir: string, target: string): { record: string; pidFile: string; logFile: string } {
  const key = createHash("sha256").update(target).digest("hex").slice(0, 16);
  return { record: path.join(dir, `${key}.json`), pidFile: path.join(dir, `${key}.pid`), logFile: path.join(dir, `${key}.log`) };
}

export async function saveAttachment(dir: string, attachment: Attachment): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(attachmentFiles(dir, attachment.target).record, JSON.stringify(attachment, null, 2), { mode: 0o600 });
}

export async function listAttachments(dir: string): Promise<Attachment[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: Attachment[] = [];
  for (const name of names.filter((n) => n.endsWith(".json"))) {
    const parsed = attachmentSchema.safeParse(JSON.parse(await readFile(path.join(dir, name), "utf8").catch(() => "null")));
    if (parsed.success) out.push(parsed.data);
  }
  return out;
}

export async function forgetAttachment(dir: string, target: string): Promise<void> {
  const files = attachmentFiles(dir, target);
  await Promise.all([files.record, files.pidFile, files.logFile].map((file) => rm(file, { force: true })));
}
