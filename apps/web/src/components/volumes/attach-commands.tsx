"use client";
/**
 * The commands that attach this volume, exactly as the server builds them (host, port, export name,
 * TLS flags), each with a copy button. Shown as tabs-free stacked blocks so all are visible at once.
 */
import { useQuery } from "@tanstack/react-query";
import { CopyButton } from "@/components/ui/copy-button";
import { Notice } from "@/components/ui/notice";
import { Spinner } from "@/components/ui/spinner";
import { toUserError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

export function AttachCommands({ name }: { name: string }) {
  const trpc = useTRPC();
  const commands = useQuery(trpc.volume.attachCommands.queryOptions({ name }));
  if (commands.isPending) {
    return (
      <p className="flex items-center gap-2 text-sm text-slate-500" role="status">
        <Spinner className="h-4 w-4" /> Loading commands…
      </p>
    );
  }
  if (commands.isError) return <Notice tone="error">{toUserError(commands.error).message}</Notice>;
  return (
    <ul className="space-y-4">
      {commands.data.commands.map((entry) => (
        <li key={entry.tool} data-command={entry.tool}>
          <div className="flex flex-wrap items-center justify-between gap-2">
            <h3 className="text-sm font-medium text-slate-800">{entry.label}</h3>
            <CopyButton text={entry.command} what={`the ${entry.label} command`} />
          </div>
          <pre className="mt-1.5 overflow-x-auto rounded-md bg-slate-900 px-3 py-2.5 font-mono text-xs leading-relaxed text-slate-100">
            <code data-testid={`attach-command-${entry.tool}`}>{entry.command}</code>
          </pre>
        </li>
      ))}
    </ul>
  );
}
