"use client";
/**
 * Change (or add) the volume's passphrase. Only the key slots change; no chunk is rewritten. The
 * inputs are uncontrolled and cleared after each attempt so no passphrase stays in the page.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { LiveRegion, Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

const FIELDS = ["oldPassphrase", "newPassphrase", "confirmPassphrase"] as const;

export function PassphraseForm({ name, hasPassphrase }: { name: string; hasPassphrase: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const change = useMutation(trpc.volume.changePassphrase.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const formRef = useRef<HTMLFormElement>(null);

  async function submit(form: HTMLFormElement) {
    const data = new FormData(form);
    const oldPassphrase = String(data.get("oldPassphrase") ?? "");
    const newPassphrase = String(data.get("newPassphrase") ?? "");
    const confirm = String(data.get("confirmPassphrase") ?? "");
    form.reset();
    setDone(null);
    if (hasPassphrase && !oldPassphrase) return setProblem({ field: "oldPassphrase", message: "Enter the current passphrase." });
    if (!newPassphrase) return setProblem({ field: "newPassphrase", message: "Enter a new passphrase." });
    if (newPassphrase !== confirm) return setProblem({ field: "confirmPassphrase", message: "The passphrases do not match." });
    setProblem(null);
    try {
      await change.mutateAsync({ name, oldPassphrase: hasPassphrase ? oldPassphrase : undefined, newPassphrase });
    } catch (error) {
      setProblem(toUserError(error));
      return;
    }
    setDone(hasPassphrase ? "Passphrase changed. The old one no longer unlocks this volume." : "Passphrase added.");
    await queryClient.invalidateQueries({ queryKey: trpc.volume.pathKey() });
  }

  return (
    <form
      ref={formRef}
      noValidate
      method="post"
      className="space-y-4"
      onSubmit={(event) => {
        event.preventDefault();
        void submit(event.currentTarget);
      }}
    >
      {formError(problem, FIELDS) && <Notice tone="error">{formError(problem, FIELDS)}</Notice>}
      <div className="grid gap-4">
        {hasPassphrase && (
          <TextField
            label="Current passphrase"
            name="oldPassphrase"
            type="password"
            autoComplete="current-password"
            error={fieldError(problem, "oldPassphrase")}
          />
        )}
        <TextField label="New passphrase" name="newPassphrase" type="password" autoComplete="new-password" error={fieldError(problem, "newPassphrase")} />
        <TextField
          label="Confirm new passphrase"
          name="confirmPassphrase"
          type="password"
          autoComplete="new-password"
          error={fieldError(problem, "confirmPassphrase")}
        />
      </div>
      <div className="flex flex-wrap items-center gap-4">
        <Button type="submit" variant="secondary" busy={change.isPending}>
          {hasPassphrase ? "Change passphrase" : "Add passphrase"}
        </Button>
        <LiveRegion message={done} />
      </div>
    </form>
  );
}
