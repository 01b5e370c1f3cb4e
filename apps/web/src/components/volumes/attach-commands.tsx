"use client";
/**
 * The commands that attach this volume, exactly as the server builds them (host, port, export name,
 * TLS flags), each with a copy button. Shown as tabs-free stacked blocks so all are visible at once.
 */
import { useQuery } from "@tanstack/react-query";
import { CommandList } from "@/components/ui/command-list";
import { LoadingLine } from "@/components/ui/loading-line";
import { Notice } from "@/components/ui/notice";
import { toUserError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

export function AttachCommands({ name }: { name: string }) {
  const trpc = useTRPC();
  const commands = useQuery(trpc.volume.attachCommands.queryOptions({ name }));
  if (commands.isPending) return <LoadingLine>Loading commands…</LoadingLine>;
  if (commands.isError) return <Notice tone="error">{toUserError(commands.error).message}</Notice>;
  if (commands.data.tls) {
    return <p className="text-sm text-slate-600">This gateway serves NBD only over TLS: attach with a device credential, above.</p>;
  }
  return <CommandList commands={commands.data.commands.map((c) => ({ ...c, id: c.tool }))} testIdPrefix="attach-command-" />;
}
