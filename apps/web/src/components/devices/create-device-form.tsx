"use client";
/**
 * Create a device credential: a name, optionally the volumes it may use (all of them by default) and
 * an expiry. The answer carries the secret once; DeviceSecret offers it for download until dismissed.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { EXPIRY_OPTIONS } from "@/components/ui/credential-status";
import { CheckboxField, SelectField, TextField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";
import { DeviceSecret } from "./device-secret";

const FIELDS = ["name", "volumes", "expiresInDays"] as const;

export function CreateDeviceForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const create = useMutation(trpc.devices.create.mutationOptions());
  const volumes = useQuery(trpc.volume.list.queryOptions());
  const [limited, setLimited] = useState(false);
  const [problem, setProblem] = useState<UserFacingError | null>(null);

  if (create.data) return <DeviceSecret created={create.data} onDone={() => create.reset()} />;

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
        const chosen = data.getAll("volume").map(String);
        if (!name) return setProblem({ field: "name", message: "Name the device, like “laptop” or “backup server”." });
        if (limited && chosen.length === 0) return setProblem({ field: "volumes", message: "Choose at least one volume, or allow all of them." });
        setProblem(null);
        create.mutate(
          { name, volumes: limited ? chosen : undefined, expiresInDays: days === "" ? undefined : Number(days) },
          {
            onError: (error) => setProblem(toUserError(error)),
            onSuccess: () => {
              form.reset();
              setLimited(false);
              void queryClient.invalidateQueries({ queryKey: trpc.devices.list.queryKey() });
            },
          },
        );
      }}
    >
      {formError(problem, FIELDS) && <Notice tone="error">{formError(problem, FIELDS)}</Notice>}
      <div className="grid gap-4 sm:grid-cols-2">
        <TextField label="Device name" name="name" autoComplete="off" hint="The machine that will attach volumes." error={fieldError(problem, "name")} />
        <SelectField label="Expires" name="expiry" defaultValue="" options={EXPIRY_OPTIONS} error={fieldError(problem, "expiresInDays")} />
      </div>
      <fieldset className="space-y-2">
        <legend className="text-sm font-medium text-slate-800">Volumes</legend>
        <CheckboxField
          label="Only the volumes I choose"
          hint="Otherwise the device may attach every volume of yours, including ones created later."
          checked={limited}
          onChange={(event) => setLimited(event.currentTarget.checked)}
        />
        {limited && (
          <div className="ml-7 grid gap-2 sm:grid-cols-3" data-testid="device-volume-choices">
            {volumes.data?.length === 0 && <p className="text-sm text-slate-500">You have no volumes yet.</p>}
            {volumes.data?.map((v) => (
              <CheckboxField key={v.id} name="volume" value={v.name} label={<span className="font-mono">{v.name}</span>} />
            ))}
          </div>
        )}
        {fieldError(problem, "volumes") && (
          <p role="alert" className="text-xs font-medium text-red-700">
            {fieldError(problem, "volumes")}
          </p>
        )}
      </fieldset>
      <Button type="submit" busy={create.isPending}>
        Create device credential
      </Button>
    </form>
  );
}
