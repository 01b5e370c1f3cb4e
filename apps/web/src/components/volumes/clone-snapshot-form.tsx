"use client";
/**
 * Clone a snapshot into a new volume (made at once, nothing copied). A parent without auto-unlock makes
 * a clone without one too, so the clone needs a passphrase (typed twice); it is also tried on the parent
 * when the parent is locked. On success the clone's page opens.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

const FIELDS = ["name", "passphrase", "confirmPassphrase"] as const;

export function CloneSnapshotForm({
  exportName,
  parentAutoUnlock,
  onCancel,
}: {
  /** VOL@SNAP */
  exportName: string;
  parentAutoUnlock: boolean;
  onCancel: () => void;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const router = useRouter();
  const clone = useMutation(trpc.volume.clone.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const formRef = useRef<HTMLFormElement>(null);

  const clearSecrets = () => {
    for (const field of ["passphrase", "confirmPassphrase"]) {
      const input = formRef.current?.elements.namedItem(field);
      if (input instanceof HTMLInputElement) input.value = "";
    }
  };

  const submit = (form: HTMLFormElement) => {
    const data = new FormData(form);
    const name = String(data.get("name") ?? "").trim();
    const passphrase = String(data.get("passphrase") ?? "");
    const confirm = String(data.get("confirmPassphrase") ?? "");
    clearSecrets();
    if (name === "") return setProblem({ field: "name", message: "Name the new volume." });
    if (!parentAutoUnlock && passphrase === "")
      return setProblem({ field: "passphrase", message: "The clone needs a passphrase (its parent has no auto-unlock)." });
    if (passphrase !== confirm) return setProblem({ field: "confirmPassphrase", message: "The passphrases do not match." });
    setProblem(null);
    clone.mutate(
      { source: exportName, name, passphrase: passphrase === "" ? undefined : passphrase },
      {
        onError: (error) => setProblem(toUserError(error)),
        onSuccess: (volume) => {
          void queryClient.invalidateQueries({ queryKey: trpc.volume.pathKey() });
          router.push(`/volumes/${encodeURIComponent(volume.name)}?created=1`);
        },
      },
    );
  };

  return (
    <form
      ref={formRef}
      noValidate
      method="post"
      aria-label={`Clone ${exportName}`}
      className="space-y-3 rounded-md bg-slate-50 p-4 ring-1 ring-slate-200"
      onSubmit={(event) => {
        event.preventDefault();
        submit(event.currentTarget);
      }}
    >
      <p className="text-sm text-slate-700">
        A new volume whose contents start as <span className="font-mono">{exportName}</span>: made at once, sharing the snapshot&apos;s data until it is
        written. Whoever can unlock the clone can read what the snapshot held.
      </p>
      {formError(problem, FIELDS) && <Notice tone="error">{formError(problem, FIELDS)}</Notice>}
      <div className="flex flex-wrap items-start gap-3">
        <TextField className="min-w-48 flex-1" label="New volume name" name="name" autoComplete="off" error={fieldError(problem, "name")} />
        {!parentAutoUnlock && (
          <>
            <TextField
              className="min-w-48 flex-1"
              label="Passphrase of the clone"
              name="passphrase"
              type="password"
              autoComplete="new-password"
              hint="If the parent is locked, its passphrase is tried too."
              error={fieldError(problem, "passphrase")}
            />
            <TextField
              className="min-w-48 flex-1"
              label="Confirm the clone's passphrase"
              name="confirmPassphrase"
              type="password"
              autoComplete="new-password"
              error={fieldError(problem, "confirmPassphrase")}
            />
          </>
        )}
      </div>
      <span className="inline-flex gap-2">
        <Button type="submit" size="sm" busy={clone.isPending}>
          Create clone
        </Button>
        <Button variant="ghost" size="sm" disabled={clone.isPending} onClick={onCancel}>
          Cancel
        </Button>
      </span>
    </form>
  );
}
