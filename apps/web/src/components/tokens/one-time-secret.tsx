"use client";
/** The token secret, shown exactly once, with a copy button and a clear "you will not see it again". */
import { useEffect, useRef } from "react";
import { Button } from "@/components/ui/button";
import { CopyButton } from "@/components/ui/copy-button";

export function OneTimeSecret({ name, secret, onDone }: { name: string; secret: string; onDone: () => void }) {
  const headingRef = useRef<HTMLHeadingElement>(null);
  // Move focus to the news, so keyboard and screen-reader users land on the secret.
  useEffect(() => headingRef.current?.focus(), []);
  return (
    <div role="status" className="space-y-3 rounded-md bg-emerald-50 p-4 ring-1 ring-emerald-200">
      <h3 ref={headingRef} tabIndex={-1} className="text-sm font-semibold text-emerald-900 focus:outline-none">
        Token “{name}” created
      </h3>
      <p className="text-sm text-emerald-900">Copy it now: this is the only time it is shown. Stratus keeps only a hash.</p>
      <div className="flex flex-wrap items-center gap-2">
        <code
          data-testid="token-secret"
          className="min-w-0 flex-1 overflow-x-auto rounded-md bg-white px-3 py-2 font-mono text-xs break-all text-slate-900 ring-1 ring-emerald-200"
        >
          {secret}
        </code>
        <CopyButton text={secret} what="the token" />
      </div>
      <p className="text-xs text-emerald-900">
        Use it as <code className="font-mono">Authorization: Bearer …</code>, or set <code className="font-mono">STRATUS_URL</code> and{" "}
        <code className="font-mono">STRATUS_TOKEN</code> for the <code className="font-mono">stratus</code> CLI.
      </p>
      <Button variant="secondary" size="sm" onClick={onDone}>
        Done, I have copied it
      </Button>
    </div>
  );
}
