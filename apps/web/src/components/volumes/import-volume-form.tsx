"use client";
/**
 * Import from URL: a name and an http(s) URL or s3://bucket/key (with the S3 endpoint, region and keys
 * for the latter). A gateway downloads it as a job; the volume's page follows the job. Inputs are
 * uncontrolled and read from FormData, so the secret key and a presigned URL never become DOM
 * attributes; the secret fields are cleared after every attempt.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { TextField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

const NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const FIELDS = ["name", "url", "s3", "passphrase"] as const;
const SECRETS = ["secretAccessKey", "passphrase"];

export function ImportVolumeForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const router = useRouter();
  const start = useMutation(trpc.volume.import.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [s3, setS3] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  const clearSecrets = () => {
    for (const name of SECRETS) {
      const input = formRef.current?.elements.namedItem(name);
      if (input instanceof HTMLInputElement) input.value = "";
    }
  };

  async function submit(form: HTMLFormElement) {
    const data = new FormData(form);
    const text = (key: string) => String(data.get(key) ?? "").trim();
    const name = text("name");
    const url = text("url");
    const passphrase = String(data.get("passphrase") ?? "");
    const fail = (p: UserFacingError) => (setProblem(p), clearSecrets());
    if (!NAME_RULE.test(name)) return fail({ field: "name", message: "Use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit." });
    if (!/^(https?|s3):\/\/\S+$/i.test(url)) return fail({ field: "url", message: "An http(s) URL or s3://bucket/key." });
    const isS3 = /^s3:\/\//i.test(url);
    const optional = (key: string) => text(key) || undefined;
    setProblem(null);
    try {
      await start.mutateAsync({
        name,
        url,
        s3: isS3
          ? { endpoint: optional("endpoint"), region: optional("region"), accessKeyId: optional("accessKeyId"), secretAccessKey: optional("secretAccessKey") }
          : undefined,
        passphrase: passphrase === "" ? undefined : passphrase,
      });
    } catch (error) {
      return fail(toUserError(error));
    }
    clearSecrets();
    await queryClient.invalidateQueries({ queryKey: trpc.volume.list.queryKey() });
    router.push(`/volumes/${encodeURIComponent(name)}`);
  }

  return (
    <form
      ref={formRef}
      noValidate
      method="post"
      aria-label="Import from URL"
      className="space-y-5"
      onSubmit={(event) => {
        event.preventDefault();
        void submit(event.currentTarget);
      }}
    >
      {formError(problem, FIELDS) && <Notice tone="error">{formError(problem, FIELDS)}</Notice>}
      <div className="grid gap-4 sm:grid-cols-2">
        <TextField label="Name" name="name" autoComplete="off" spellCheck={false} hint="The new volume's name." error={fieldError(problem, "name")} />
        <TextField
          label="Image URL"
          name="url"
          autoComplete="off"
          spellCheck={false}
          placeholder="https://…/disk.qcow2 or s3://bucket/key"
          hint="Raw or qcow2. A presigned URL's query is kept secret."
          error={fieldError(problem, "url")}
          onChange={(event) => setS3(/^s3:\/\//i.test(event.currentTarget.value.trim()))}
        />
      </div>
      {s3 && (
        <fieldset className="grid gap-4 sm:grid-cols-2">
          <legend className="mb-2 text-sm font-semibold text-slate-900">S3 object</legend>
          <TextField
            label="Endpoint"
            name="endpoint"
            autoComplete="off"
            placeholder="https://s3.example.com"
            hint="Empty for AWS."
            error={fieldError(problem, "s3")}
          />
          <TextField label="Region" name="region" autoComplete="off" placeholder="us-east-1" />
          <TextField label="Access key id" name="accessKeyId" autoComplete="off" spellCheck={false} />
          <TextField label="Secret access key" name="secretAccessKey" type="password" autoComplete="off" hint="Sealed for the job; never stored or logged." />
        </fieldset>
      )}
      <TextField
        label="Passphrase"
        name="passphrase"
        type="password"
        autoComplete="new-password"
        hint="Optional: also protect the volume with a passphrase (it keeps auto-unlock)."
        error={fieldError(problem, "passphrase")}
      />
      <div className="flex justify-end border-t border-slate-100 pt-4">
        <Button type="submit" busy={start.isPending}>
          Import
        </Button>
      </div>
    </form>
  );
}

/** The volumes page's "Import from URL" button and, once pressed, the form in a card. */
export function ImportFromUrl() {
  const [open, setOpen] = useState(false);
  if (!open) {
    return (
      <div className="mb-4 flex justify-end">
        <Button variant="secondary" onClick={() => setOpen(true)}>
          Import from URL
        </Button>
      </div>
    );
  }
  return (
    <Card
      id="import-url"
      title="Import from URL"
      description="A gateway downloads a raw or qcow2 image into a new volume sized to it. The volume's page shows the progress."
      className="mb-6"
    >
      <ImportVolumeForm />
    </Card>
  );
}
