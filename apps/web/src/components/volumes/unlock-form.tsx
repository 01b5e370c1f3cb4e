"use client";
/** Unlock a volume that has no auto-unlock (after a gateway restart), so clients can attach it. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { LiveRegion, Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

/** `onUnlocked`: the form goes away once the volume is unlocked, so its page keeps the message. */
export function UnlockForm({ name, onUnlocked }: { name: string; onUnlocked?: (message: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  // In the mutation's own options, not mutate()'s: those are skipped when the form unmounts first,
  // which it does as soon as the page's refresh sees the volume unlocked, before this reply arrives.
  const unlock = useMutation(
    trpc.volume.unlock.mutationOptions({
      onError: (error) => setProblem(toUserError(error)),
      onSuccess: () => {
        setDone("Unlocked: clients can attach now.");
        onUnlocked?.("Unlocked: clients can attach now.");
        void queryClient.invalidateQueries({ queryKey: trpc.volume.pathKey() });
      },
    }),
  );

  return (
    <form
      noValidate
      method="post"
      className="space-y-3"
      onSubmit={(event) => {
        event.preventDefault();
        const form = event.currentTarget;
        const passphrase = String(new FormData(form).get("passphrase") ?? "");
        form.reset();
        setDone(null);
        if (!passphrase) return setProblem({ field: "passphrase", message: "Enter the passphrase." });
        setProblem(null);
        unlock.mutate({ name, passphrase });
      }}
    >
      {formError(problem, ["passphrase"]) && <Notice tone="error">{formError(problem, ["passphrase"])}</Notice>}
      <div className="flex flex-wrap items-end gap-3">
        <TextField
          className="min-w-56 flex-1"
          label="Passphrase"
          name="passphrase"
          type="password"
          autoComplete="current-password"
          error={fieldError(problem, "passphrase")}
        />
        <Button type="submit" busy={unlock.isPending} className={fieldError(problem, "passphrase") ? "mb-5" : ""}>
          Unlock
        </Button>
      </div>
      <LiveRegion message={done} />
    </form>
  );
}
