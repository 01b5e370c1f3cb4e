"use client";
/**
 * Create an API token: name, scope, optional expiry. The secret comes back once, in the mutation's
 * answer, and is shown by OneTimeSecret until the user dismisses it; then the mutation is reset so
 * the secret is gone from memory and from the page.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { EXPIRY_OPTIONS } from "@/components/ui/credential-status";
import { SelectField, TextField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";
import { OneTimeSecret } from "./one-time-secret";

const FIELDS = ["name", "scope", "expiresInDays"] as const;

export function CreateTokenForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const create = useMutation(trpc.token.create.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);

  if (create.data) {
    return (
      <OneTimeSecret
        name={create.data.token.name}
        secret={create.data.secret}
        onDone={() => {
          create.reset();
        }}
      />
    );
  }

  return (
    <form
      noValidate
      className="space-y-4"
      onSubmit={(event) => {
        event.preventDefault();
        const form = event.currentTarget;
        const data = new FormData(form);
        const name = String(data.get("name") ?? "").trim();
        const days = String(data.get("expiry") ?? "");
        if (!name) return setProblem({ field: "name", message: "Give the token a name, like “backup script”." });
        setProblem(null);
        create.mutate(
          {
            name,
            scope: data.get("scope") === "read" ? "read" : "write",
            expiresInDays: days === "" ? undefined : Number(days),
          },
          {
            onError: (error) => setProblem(toUserError(error)),
            onSuccess: () => {
              form.reset();
              void queryClient.invalidateQueries({ queryKey: trpc.token.list.queryKey() });
            },
          },
        );
      }}
    >
      {formError(problem, FIELDS) && <Notice tone="error">{formError(problem, FIELDS)}</Notice>}
      <div className="grid gap-4 sm:grid-cols-3">
        <TextField
          label="Name"
          name="name"
          autoComplete="off"
          hint="What uses it, so you know what breaks if you revoke it."
          error={fieldError(problem, "name")}
        />
        <SelectField
          label="Scope"
          name="scope"
          defaultValue="write"
          options={[
            { value: "write", label: "Read and write" },
            { value: "read", label: "Read only" },
          ]}
          hint="Read-only tokens can list and inspect, not change."
          error={fieldError(problem, "scope")}
        />
        <SelectField label="Expires" name="expiry" defaultValue="" options={EXPIRY_OPTIONS} error={fieldError(problem, "expiresInDays")} />
      </div>
      <Button type="submit" busy={create.isPending}>
        Create token
      </Button>
    </form>
  );
}
