"use client";
/**
 * Everything that happened in this account, newest first: sign-ins and sign-outs, devices attaching and
 * detaching volumes, and every volume's own activity (linked to its page), with where it came from.
 */
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { Notice } from "@/components/ui/notice";
import { describeActivity, describeVia } from "@/components/volumes/activity-log";
import { toUserError } from "@/lib/errors";
import { formatDateTime, formatRelative } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";

export function AccountActivity() {
  const trpc = useTRPC();
  const activity = useQuery(trpc.account.activity.queryOptions(undefined, { refetchInterval: 5_000 }));
  const now = useNow(5_000);
  if (activity.isPending) return <p className="text-sm text-slate-500">Loading…</p>;
  if (activity.isError) return <Notice tone="error">{toUserError(activity.error).message}</Notice>;
  if (activity.data.length === 0) return <p className="text-sm text-slate-500">Nothing yet.</p>;
  return (
    <ol className="divide-y divide-slate-100" aria-label="Account activity, newest first">
      {activity.data.map((entry) => (
        <li key={entry.id} className="flex flex-wrap items-baseline justify-between gap-x-4 gap-y-0.5 py-2 text-sm" data-action={entry.action}>
          <span className="text-slate-800">
            {entry.volumeName && (
              <>
                <Link href={`/volumes/${encodeURIComponent(entry.volumeName)}`} className="font-mono text-sky-700 hover:underline">
                  {entry.volumeName}
                </Link>
                {": "}
              </>
            )}
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
