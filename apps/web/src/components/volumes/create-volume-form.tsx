"use client";
/**
 * Create a volume: name, size with a unit, chunk size, compression, durability, an optional
 * passphrase (typed twice) and whether the deployment may unlock it by itself after a restart.
 * Inputs are uncontrolled and read from FormData, so the passphrase never becomes a DOM attribute;
 * the passphrase fields are cleared after every attempt.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { CheckboxField, SelectField, SizeField, TextField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { formatBytes } from "@/lib/format";
import { CHUNK_SIZES, DEFAULT_CHUNK_SIZE, parseSizeInput, SIZE_UNITS } from "@/lib/sizes";
import { useTRPC } from "@/lib/trpc";

const NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const FIELDS = ["name", "size", "sizeBytes", "chunkSize", "compression", "durability", "passphrase", "confirmPassphrase", "autoUnlock"] as const;

export function CreateVolumeForm() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const router = useRouter();
  const create = useMutation(trpc.volume.create.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [autoUnlock, setAutoUnlock] = useState(true);
  const formRef = useRef<HTMLFormElement>(null);

  const clearSecrets = () => {
    for (const name of ["passphrase", "confirmPassphrase"]) {
      const input = formRef.current?.elements.namedItem(name);
      if (input instanceof HTMLInputElement) input.value = "";
    }
  };

  async function submit(form: HTMLFormElement) {
    const data = new FormData(form);
    const name = String(data.get("name") ?? "").trim();
    const size = parseSizeInput(String(data.get("sizeAmount") ?? ""), String(data.get("sizeUnit") ?? ""));
    const passphrase = String(data.get("passphrase") ?? "");
    const confirm = String(data.get("confirmPassphrase") ?? "");
    const fail = (p: UserFacingError) => (setProblem(p), clearSecrets());

    if (!NAME_RULE.test(name)) return fail({ field: "name", message: "Use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit." });
    if ("error" in size) return fail({ field: "size", message: size.error });
    if (passphrase !== confirm) return fail({ field: "confirmPassphrase", message: "The passphrases do not match." });
    if (!autoUnlock && passphrase === "") return fail({ field: "passphrase", message: "Without auto-unlock the volume needs a passphrase." });

    setProblem(null);
    try {
      await create.mutateAsync({
        name,
        size: size.bytes,
        chunkSize: Number(data.get("chunkSize")),
        compression: String(data.get("compression")) as "zstd" | "none",
        durability: String(data.get("durability")) as "local" | "cloud",
        passphrase: passphrase === "" ? undefined : passphrase,
        autoUnlock,
      });
    } catch (error) {
      return fail(toUserError(error));
    }
    clearSecrets();
    await queryClient.invalidateQueries({ queryKey: trpc.volume.list.queryKey() });
    router.push(`/volumes/${encodeURIComponent(name)}?created=1`);
  }

  return (
    <form
      ref={formRef}
      noValidate
      method="post"
      className="space-y-8"
      onSubmit={(event) => {
        event.preventDefault();
        void submit(event.currentTarget);
      }}
    >
      {formError(problem, FIELDS) && <Notice tone="error">{formError(problem, FIELDS)}</Notice>}

      <fieldset className="grid gap-4 sm:grid-cols-2">
        <legend className="mb-2 text-sm font-semibold text-slate-900">Disk</legend>
        <TextField
          label="Name"
          name="name"
          autoComplete="off"
          spellCheck={false}
          hint="The NBD export name clients attach to."
          error={fieldError(problem, "name")}
        />
        <SizeField
          label="Size"
          amountName="sizeAmount"
          unitName="sizeUnit"
          units={SIZE_UNITS}
          defaultAmount="10"
          defaultUnit="GiB"
          hint="Sparse: you pay only for what is written."
          error={fieldError(problem, "size", "sizeBytes")}
        />
        <SelectField
          label="Chunk size"
          name="chunkSize"
          defaultValue={String(DEFAULT_CHUNK_SIZE)}
          options={CHUNK_SIZES.map((bytes) => ({ value: String(bytes), label: formatBytes(bytes) }))}
          hint="The unit of upload and caching. 1 MiB suits most disks."
          error={fieldError(problem, "chunkSize")}
        />
        <SelectField
          label="Compression"
          name="compression"
          defaultValue="zstd"
          options={[
            { value: "zstd", label: "zstd (recommended)" },
            { value: "none", label: "None" },
          ]}
          error={fieldError(problem, "compression")}
        />
      </fieldset>

      <fieldset>
        <legend className="mb-2 text-sm font-semibold text-slate-900">Durability</legend>
        <div className="grid gap-3 sm:grid-cols-2">
          <DurabilityChoice
            value="local"
            title="Local (faster)"
            text="A flush returns once the write is safe on the gateway's disk; the cloud commit follows within seconds."
            defaultChecked
          />
          <DurabilityChoice
            value="cloud"
            title="Cloud"
            text="A flush returns only after the data reached the bucket. Slower flushes, nothing to lose if the gateway's machine is lost."
          />
        </div>
        {fieldError(problem, "durability") && (
          <p role="alert" className="mt-1 text-xs font-medium text-red-700">
            {fieldError(problem, "durability")}
          </p>
        )}
      </fieldset>

      <fieldset className="space-y-4">
        <legend className="mb-1 text-sm font-semibold text-slate-900">Encryption</legend>
        <p className="text-sm text-slate-600">
          Every volume is encrypted with its own key. A passphrase adds a key slot only you can open; it is never stored.
        </p>
        <div className="grid gap-4 sm:grid-cols-2">
          <TextField
            label="Passphrase"
            name="passphrase"
            type="password"
            autoComplete="new-password"
            hint={autoUnlock ? "Optional." : "Required without auto-unlock."}
            error={fieldError(problem, "passphrase")}
          />
          <TextField
            label="Confirm passphrase"
            name="confirmPassphrase"
            type="password"
            autoComplete="new-password"
            error={fieldError(problem, "confirmPassphrase")}
          />
        </div>
        <CheckboxField
          name="autoUnlock"
          label="Unlock automatically after a restart"
          hint="The deployment's master key can open this volume. Turn off to require the passphrase after every gateway restart."
          checked={autoUnlock}
          onChange={(event) => setAutoUnlock(event.target.checked)}
        />
      </fieldset>

      <div className="flex justify-end gap-3 border-t border-slate-100 pt-5">
        <Button type="submit" busy={create.isPending}>
          Create volume
        </Button>
      </div>
    </form>
  );
}

function DurabilityChoice({ value, title, text, defaultChecked }: { value: string; title: string; text: string; defaultChecked?: boolean }) {
  return (
    <label className="flex cursor-pointer gap-3 rounded-md p-3 ring-1 ring-slate-200 has-[:checked]:bg-indigo-50/60 has-[:checked]:ring-2 has-[:checked]:ring-indigo-600 has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-offset-2 has-[:focus-visible]:outline-indigo-600">
      <input type="radio" name="durability" value={value} defaultChecked={defaultChecked} className="mt-1 h-4 w-4 text-indigo-600 focus:outline-none" />
      <span>
        <span className="block text-sm font-medium text-slate-900">{title}</span>
        <span className="block text-xs text-slate-600">{text}</span>
      </span>
    </label>
  );
}
