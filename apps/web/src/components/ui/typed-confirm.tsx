"use client";
/**
 * A dangerous action that runs only after the user types an exact word (the volume's name): the
 * button stays disabled until the text matches. Used for delete and for shrinking a volume.
 */
import { useId, useState, type ReactNode } from "react";
import { Button } from "./button";

export function TypedConfirm({
  expected,
  prompt,
  actionLabel,
  busy,
  onConfirm,
  error,
}: {
  expected: string;
  prompt: ReactNode;
  actionLabel: string;
  busy?: boolean;
  onConfirm: (typed: string) => void;
  error?: string;
}) {
  const id = useId();
  const [typed, setTyped] = useState("");
  const matches = typed === expected;
  return (
    <form
      className="space-y-2"
      onSubmit={(event) => {
        event.preventDefault();
        if (matches) onConfirm(typed);
      }}
    >
      <label htmlFor={id} className="block text-sm text-slate-700">
        {prompt}
      </label>
      <div className="flex flex-wrap gap-2">
        <input
          id={id}
          value={typed}
          onChange={(event) => setTyped(event.target.value)}
          autoComplete="off"
          spellCheck={false}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : undefined}
          className="min-w-0 flex-1 rounded-md border-0 px-3 py-2 font-mono text-sm ring-1 ring-inset ring-slate-300 focus:ring-2 focus:ring-red-600 focus:outline-none"
        />
        <Button type="submit" variant="danger" disabled={!matches} busy={busy}>
          {actionLabel}
        </Button>
      </div>
      {error && (
        <p id={`${id}-error`} role="alert" className="text-xs font-medium text-red-700">
          {error}
        </p>
      )}
    </form>
  );
}
