"use client";
/**
 * The import job of a volume made by "Import from URL": phase, a bar of bytes done of the total,
 * rate and time left, polled each second, and a cancel button (the job stops and deletes the volume).
 * Failure reasons come from the job, which words them for people (never the URL's query or a key).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Button } from "@/components/ui/button";
import { Notice } from "@/components/ui/notice";
import { toUserError } from "@/lib/errors";
import { formatBytes, formatRate } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";

const POLL_MS = 1_000;
const PHASES: Record<string, string> = { downloading: "Downloading", converting: "Converting qcow2", committing: "Committing to the bucket" };

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined) return "—";
  if (seconds < 60) return `${seconds}s`;
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}

export function ImportProgress({ name, onFinished }: { name: string; onFinished: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const cancel = useMutation(trpc.volume.cancelImport.mutationOptions());
  const view = useQuery(
    trpc.volume.importProgress.queryOptions(
      { name },
      { refetchInterval: (query) => (["completed", "failed", "cancelled"].includes(query.state.data?.state ?? "") ? false : POLL_MS) },
    ),
  );
  const state = view.data?.state;
  useEffect(() => {
    if (state === "completed" || state === "failed" || state === "cancelled") {
      onFinished();
      void queryClient.invalidateQueries({ queryKey: trpc.volume.get.queryKey({ name }) });
    }
  }, [state, name, onFinished, queryClient, trpc]);

  if (view.isError) return <Notice tone="error">{toUserError(view.error).message}</Notice>;
  const p = view.data?.progress;
  const percent = p && p.bytesTotal > 0 ? Math.min(100, Math.floor((100 * p.bytesDone) / p.bytesTotal)) : 0;
  if (state === "completed") return <Notice tone="success">Imported{p ? ` from ${p.source}` : ""}. The volume is ready to attach.</Notice>;
  if (state === "cancelled") return <Notice tone="warning">The import was cancelled; the volume is deleted.</Notice>;
  if (state === "failed") return <Notice tone="error">The import failed: {view.data?.error ?? "unknown error"}</Notice>;
  return (
    <div className="space-y-3" data-testid="import-progress">
      <p className="text-sm text-slate-700">
        {state === "waiting" || !p ? "Waiting for a gateway to start the import…" : `${PHASES[p.phase] ?? p.phase} ${p.source}`}
      </p>
      <div
        role="progressbar"
        aria-label="Import progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        className="h-3 w-full overflow-hidden rounded-full bg-slate-100 ring-1 ring-slate-200"
      >
        <div className="h-full bg-indigo-600 transition-[width]" style={{ width: `${percent}%` }} />
      </div>
      {p && (
        <p className="text-sm text-slate-600 tabular-nums" data-testid="import-figures">
          {formatBytes(p.bytesDone)} of {formatBytes(p.bytesTotal)} ({percent}%) · {formatRate(p.rateBytesPerSecond)} · {formatEta(p.etaSeconds)} left
        </p>
      )}
      <Button variant="secondary" busy={cancel.isPending} onClick={() => cancel.mutate({ name }, { onSuccess: () => void view.refetch() })}>
        Cancel import
      </Button>
      {cancel.error && <Notice tone="error">{toUserError(cancel.error).message}</Notice>}
    </div>
  );
}
