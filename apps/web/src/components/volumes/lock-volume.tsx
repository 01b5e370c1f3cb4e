"use client";
/**
 * Lock a volume that has no auto-unlock: the unlock grant goes, so the next attach needs the passphrase.
 * A confirmation first says what happens to a device using it now: its gateway commits what was
 * written, closes the volume and drops its cached (decrypted) data, and the clients get errors.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Notice } from "@/components/ui/notice";
import { toUserError, type UserFacingError } from "@/lib/errors";
import { sentence } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";

export function LockVolume({ name, attached, onLocked }: { name: string; attached: boolean; onLocked: (message: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const lock = useMutation(trpc.volume.lock.mutationOptions());
  const [confirming, setConfirming] = useState(false);
  const [problem, setProblem] = useState<UserFacingError | null>(null);

  const run = () => {
    setProblem(null);
    lock.mutate(
      { name },
      {
        onError: (error) => setProblem(toUserError(error)),
        onSuccess: (outcome) => {
          setConfirming(false);
          onLocked(sentence(outcome.message));
          void queryClient.invalidateQueries({ queryKey: trpc.volume.pathKey() });
        },
      },
    );
  };

  return (
    <div className="space-y-3" data-testid="lock-volume">
      {!confirming && (
        <Button variant="secondary" size="sm" onClick={() => setConfirming(true)}>
          Lock
        </Button>
      )}
      {confirming && (
        <Notice tone="warning">
          <p>
            Locking <strong className="font-mono">{name}</strong> removes its unlock: the next attach needs the passphrase.{" "}
            {attached ? "It is attached now: its" : "A"} gateway holding it commits what was written, closes the volume and drops its cached (decrypted) data;
            clients still connected get errors from then on.
          </p>
          <span className="mt-2 inline-flex gap-2">
            <Button variant="danger" size="sm" busy={lock.isPending} onClick={run}>
              Confirm lock
            </Button>
            <Button variant="ghost" size="sm" disabled={lock.isPending} onClick={() => setConfirming(false)}>
              Cancel
            </Button>
          </span>
        </Notice>
      )}
      {problem && <Notice tone="error">{problem.message}</Notice>}
    </div>
  );
}
