"use client";
/**
 * Detach the device that holds this volume. "Detach" asks the holder's gateway to flush, commit and
 * let go (the request waits for it, up to the server's handoff timeout); "Force detach" takes the
 * volume away without it, after a confirmation that says what that costs: the holder's writes not yet
 * committed are kept aside as an orphan set, not committed.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { LiveRegion, Notice } from "@/components/ui/notice";
import { toUserError, type UserFacingError } from "@/lib/errors";
import { sentence } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";
import { LeaseCell, type LeaseInfo } from "./lease-cell";

export function DetachVolume({ name, lease, now }: { name: string; lease: LeaseInfo | null; now: number }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const detach = useMutation(trpc.volume.detach.mutationOptions());
  const [confirmingForce, setConfirmingForce] = useState(false);
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const forcing = detach.isPending && detach.variables?.force === true;

  const run = (force: boolean) => {
    setProblem(null);
    setDone(null);
    detach.mutate(
      { name, force },
      {
        onError: (error) => setProblem(toUserError(error)),
        onSuccess: (outcome) => {
          setConfirmingForce(false);
          setDone(sentence(outcome.message));
          void queryClient.invalidateQueries({ queryKey: trpc.volume.pathKey() });
        },
      },
    );
  };

  return (
    <div className="space-y-3" data-testid="detach-volume">
      {lease ? (
        <>
          <div className="flex flex-wrap items-center justify-between gap-3">
            <LeaseCell lease={lease} now={now} />
            {!confirmingForce && (
              <span className="inline-flex gap-2">
                <Button variant="secondary" size="sm" busy={detach.isPending && !forcing} disabled={detach.isPending} onClick={() => run(false)}>
                  {detach.isPending && !forcing ? "Waiting for the holder…" : "Detach"}
                </Button>
                <Button variant="danger" size="sm" disabled={detach.isPending} onClick={() => setConfirmingForce(true)}>
                  Force detach
                </Button>
              </span>
            )}
          </div>
          {confirmingForce && (
            <Notice tone="warning">
              <p>
                Force detach takes <strong className="font-mono">{name}</strong> away from {lease.holder} without its cooperation. Writes it has not flushed yet
                are <strong>not committed</strong>: they are kept aside as an orphan set, and its clients lose the disk at once.
              </p>
              <span className="mt-2 inline-flex gap-2">
                <Button variant="danger" size="sm" busy={forcing} onClick={() => run(true)}>
                  Confirm force detach
                </Button>
                <Button variant="ghost" size="sm" disabled={forcing} onClick={() => setConfirmingForce(false)}>
                  Cancel
                </Button>
              </span>
            </Notice>
          )}
        </>
      ) : (
        <p className="text-sm text-slate-500">No device holds this volume.</p>
      )}
      {problem && <Notice tone="error">{problem.message}</Notice>}
      <LiveRegion message={done} />
    </div>
  );
}
