/** Read-only verbs of the volume detail page: activity, chart samples, attach commands. */
import { exportNameOf, listVolumeActivityRows, listVolumeSamples } from "@stratus/db";
import * as z from "zod";
import { activityView, type ActivityView } from "../activity/activity";
import type { ServiceContext } from "../context";
import { volumeByName, volumeMetricsInput } from "./inputs";
import { findOwnedVolume } from "./lookup";
import { parseInput } from "./volumes";

export async function listVolumeActivity(ctx: ServiceContext, input: { name: string }): Promise<ActivityView[]> {
  const { name } = parseInput(volumeByName, input);
  const row = await findOwnedVolume(ctx, name, { includeDeleting: true });
  return (await listVolumeActivityRows(ctx.runtime.database.db, ctx.actor.userId, row.id)).map(activityView);
}

export interface MetricsPoint {
  at: string;
  storedBytes: number;
  logicalBytes: number;
  /** Bytes per second over the interval ending at `at` (0 for the first sample after an engine opened). */
  readBps: number;
  writeBps: number;
}

export async function volumeMetrics(ctx: ServiceContext, input: z.input<typeof volumeMetricsInput>): Promise<{ points: MetricsPoint[] }> {
  const { name, minutes } = parseInput(volumeMetricsInput, input);
  const row = await findOwnedVolume(ctx, name, { includeDeleting: true });
  const samples = await listVolumeSamples(ctx.runtime.database.db, row.id, new Date(Date.now() - minutes * 60_000));
  const points = samples.map((sample, i): MetricsPoint => {
    const previous = samples[i - 1];
    const seconds = previous ? (sample.at.getTime() - previous.at.getTime()) / 1000 : 0;
    // Counters restart at 0 when an engine reopens: a drop means "new run", not negative throughput.
    const rate = (now: number, before: number | undefined) => (seconds > 0 && before !== undefined && now >= before ? (now - before) / seconds : 0);
    return {
      at: sample.at.toISOString(),
      storedBytes: sample.storedBytes,
      logicalBytes: sample.logicalWrittenBytes,
      readBps: Math.round(rate(sample.readBytes, previous?.readBytes)),
      writeBps: Math.round(rate(sample.writtenBytes, previous?.writtenBytes)),
    };
  });
  return { points };
}

export interface AttachCommand {
  /** Stable id for tests and the UI: nbdinfo, nbdcopy, nbd-client, qemu, wnbd. */
  tool: string;
  label: string;
  command: string;
}

export interface AttachCommands {
  uri: string;
  exportName: string;
  tls: boolean;
  commands: AttachCommand[];
}

/** Commands ready to copy for the gateway's NBD address (TLS flags when the gateway requires TLS). */
export async function volumeAttachCommands(ctx: ServiceContext, input: { name: string }): Promise<AttachCommands> {
  const { name } = parseInput(volumeByName, input);
  const row = await findOwnedVolume(ctx, name);
  const { host, port, tls } = ctx.runtime.config.nbd;
  const hostInUri = host.includes(":") ? `[${host}]` : host;
  const scheme = tls ? "nbds" : "nbd";
  const exportName = await exportNameOf(ctx.runtime.database.db, row);
  const uri = `${scheme}://${hostInUri}:${port}/${encodeURIComponent(exportName)}`;
  const commands: AttachCommand[] = [
    { tool: "nbdinfo", label: "Inspect (libnbd nbdinfo)", command: `nbdinfo ${uri}` },
    { tool: "nbdcopy", label: "Copy an image in (libnbd nbdcopy)", command: `nbdcopy disk.img ${uri}` },
    {
      tool: "nbd-client",
      label: "Linux kernel block device",
      command: `sudo nbd-client ${host} ${port} /dev/nbd0 -N ${exportName}${tls ? " -enable-tls" : ""}`,
    },
    { tool: "qemu", label: "qemu virtual disk", command: `qemu-system-x86_64 -drive file=${uri},format=raw,if=virtio` },
    {
      tool: "wnbd",
      label: "Windows (WNBD)",
      command: `wnbd-client map ${exportName} --hostname ${host} --port ${port} --instance-name ${row.name}`,
    },
  ];
  return { uri, exportName, tls, commands };
}
