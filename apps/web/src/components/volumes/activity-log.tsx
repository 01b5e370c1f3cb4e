"use client";
/** Who did what to this volume, newest first: the action, through what (browser, token, CLI), when. */
import { useQuery } from "@tanstack/react-query";
import { Notice } from "@/components/ui/notice";
import { toUserError } from "@/lib/errors";
import { formatBytes, formatDateTime, formatRelative } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";

const ACTIONS: Record<string, string> = {
  "volume.create": "Created",
  "volume.resize": "Resized",
  "volume.passphrase": "Changed the passphrase",
  "volume.unlock": "Unlocked",
  "volume.lock": "Locked",
  "volume.delete": "Started deleting",
  "volume.attached": "Attached",
  "volume.detached": "Detached",
  "volume.detach": "Detached",
  "volume.recover": "Recovered from the bucket",
  "volume.import": "Started importing",
  "volume.import-cancel": "Cancelled the import",
  "volume.clone": "Created as a clone",
  "snapshot.create": "Took a snapshot",
  "snapshot.delete": "Deleted a snapshot",
  "orphans.export": "Exported an orphan set",
  "orphans.discard": "Discarded an orphan set",
  "account.signin": "Signed in",
  "account.signout": "Signed out",
  "token.create": "Created API token",
  "token.revoke": "Revoked API token",
  "device.create": "Created device",
  "device.revoke": "Revoked device",
};

export const VIA: Record<string, string> = { session: "dashboard", token: "API token", local: "local CLI", device: "device over TLS" };

/** How an entry came about, for "· via …": a device or the loopback attaches by itself, not through the CLI. */
export function describeVia(action: string, via: string): string {
  if (via === "local" && (action === "volume.attached" || action === "volume.detached")) return "loopback NBD";
  return VIA[via] ?? via;
}

export function describeActivity(action: string, detail: Record<string, unknown> | null | undefined): string {
  const base = ACTIONS[action] ?? action;
  if (action === "volume.resize" && typeof detail?.toBytes === "number") {
    const from = typeof detail.fromBytes === "number" ? ` from ${formatBytes(detail.fromBytes)}` : "";
    return `${base}${from} to ${formatBytes(detail.toBytes)}`;
  }
  if (action === "volume.detach") {
    const holder = typeof detail?.holder === "string" ? ` ${detail.holder}` : "";
    return `${detail?.force === true ? "Force detached" : base}${holder}`;
  }
  if (action === "volume.create" && typeof detail?.sizeBytes === "number") return `${base} (${formatBytes(detail.sizeBytes)})`;
  if (action === "volume.import" && typeof detail?.source === "string") return `${base} ${detail.source} (${String(detail.format)})`;
  if ((action === "volume.attached" || action === "volume.detached") && typeof detail?.holder === "string") {
    return `${base} ${action === "volume.attached" ? "by" : "from"} ${detail.holder}`;
  }
  if (action === "volume.clone" && typeof detail?.from === "string") return `Cloned from ${detail.from}`;
  if (action.startsWith("snapshot.") && typeof detail?.snapshot === "string") {
    const epoch = typeof detail.epoch === "number" ? ` (epoch ${detail.epoch})` : "";
    return `${action === "snapshot.create" ? "Took snapshot" : "Deleted snapshot"} ${detail.snapshot}${epoch}`;
  }
  if (action.startsWith("token.") || action.startsWith("device.")) return typeof detail?.name === "string" ? `${base} ${detail.name}` : base;
  return base;
}

export function ActivityLog({ name }: { name: string }) {
  const trpc = useTRPC();
  const activity = useQuery(trpc.volume.activity.queryOptions({ name }, { refetchInterval: 5_000 }));
  const now = useNow(5_000);
  if (activity.isPending) return <p className="text-sm text-slate-500">Loading…</p>;
  if (activity.isError) return <Notice tone="error">{toUserError(activity.error).message}</Notice>;
  if (activity.data.length === 0) return <p className="text-sm text-slate-500">Nothing yet.</p>;
  return (
    <ol className="divide-y divide-slate-100" aria-label="Activity, newest first">
      {activity.data.map((entry) => (
        <li key={entry.id} className="flex flex-wrap items-baseline justify-between gap-x-4 gap-y-0.5 py-2 text-sm">
          <span className="text-slate-800">
            {describeActivity(entry.action, entry.detail)}
            <span className="text-slate-500"> · via {describeVia(entry.action, entry.via)}</span>
          </span>
          <time dateTime={new Date(entry.at).toISOString()} title={formatDateTime(entry.at)} className="text-xs text-slate-500">
            {formatRelative(entry.at, now)}
          </time>
        </li>
      ))}
    </ol>
  );
}
