"use client";
/**
 * Delete: typed confirmation, then progress until the background job has removed every object and
 * the row. Progress polls `volume.deleteProgress` each second; the job's own error text is never
 * shown (it may hold internals), only that it failed and can be retried.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useEffect, useState } from "react";
import { buttonClasses } from "@/components/ui/button";
import { Notice } from "@/components/ui/notice";
import { Spinner } from "@/components/ui/spinner";
import { TypedConfirm } from "@/components/ui/typed-confirm";
import { toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

export function DeleteVolume({ name, deleting, onStarted, onCompleted }: { name: string; deleting: boolean; onStarted: () => void; onCompleted: () => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const remove = useMutation(trpc.volume.delete.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [retrying, setRetrying] = useState(false);

  if (deleting && !retrying) return <DeleteProgress name={name} onRetry={() => setRetrying(true)} onCompleted={onCompleted} />;
  return (
    <div className="space-y-3">
      <p className="text-sm text-slate-600">Deleting removes every chunk object of this volume from the bucket. Detach all clients first.</p>
      <TypedConfirm
        expected={name}
        prompt={
          <>
            Type <strong className="font-mono">{name}</strong> to delete this volume
          </>
        }
        actionLabel="Delete volume"
        busy={remove.isPending}
        error={problem?.message}
        onConfirm={(typed) => {
          setProblem(null);
          remove.mutate(
            { name, confirm: typed },
            {
              onError: (error) => setProblem(toUserError(error)),
              onSuccess: () => {
                setRetrying(false);
                onStarted();
                void queryClient.invalidateQueries({ queryKey: trpc.volume.list.queryKey() });
              },
            },
          );
        }}
      />
    </div>
  );
}

function DeleteProgress({ name, onRetry, onCompleted }: { name: string; onRetry: () => void; onCompleted: () => void }) {
  const trpc = useTRPC();
  const progress = useQuery(
    trpc.volume.deleteProgress.queryOptions(
      { name },
      { refetchInterval: (query) => (query.state.data?.state === "completed" || query.state.data?.state === "failed" ? false : 1_000) },
    ),
  );
  const data = progress.data;
  const completed = data?.state === "completed";
  useEffect(() => {
    if (completed) onCompleted();
  }, [completed, onCompleted]);
  const objects = data?.objectsDeleted ?? 0;
  const objectText = `${objects} ${objects === 1 ? "object" : "objects"} removed`;

  return (
    <div aria-live="polite" className="space-y-3" data-testid="delete-progress" data-state={data?.state ?? "pending"}>
      {data?.state === "completed" ? (
        <Notice tone="success">
          <p>
            <strong>{name}</strong> is deleted: {objectText} from the bucket.
          </p>
          <Link href="/volumes" className={`${buttonClasses("secondary", "sm")} mt-2`}>
            Back to volumes
          </Link>
        </Notice>
      ) : data?.state === "failed" ? (
        <Notice tone="error">
          <p>Deleting stopped after {objectText}. Try again; it continues where it stopped.</p>
          <button type="button" onClick={onRetry} className={`${buttonClasses("secondary", "sm")} mt-2`}>
            Try again
          </button>
        </Notice>
      ) : progress.isError ? (
        <Notice tone="error">{toUserError(progress.error).message}</Notice>
      ) : (
        <div role="status" className="space-y-2">
          <p className="flex items-center gap-2 text-sm text-slate-700">
            <Spinner className="h-4 w-4" />
            {data?.state === "active" ? `Deleting… ${objectText}` : "Waiting for the delete job to start…"}
          </p>
          <div className="h-1.5 overflow-hidden rounded-full bg-slate-100" aria-hidden="true">
            <div className="h-full w-1/3 animate-pulse rounded-full bg-red-500" />
          </div>
        </div>
      )}
    </div>
  );
}
