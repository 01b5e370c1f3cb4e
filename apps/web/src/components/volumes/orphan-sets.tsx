"use client";
/**
 * The volume's orphan sets: writes a gateway kept aside, never committed, when another holder took the
 * volume. Each shows its size, time, reason and gateway, with "Export as a file" (a download when this
 * server's gateway holds the set, else the CLI command to run on that gateway's host) and "Discard".
 * Nothing is shown while the volume has none.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { buttonClasses } from "@/components/ui/button";
import { Card } from "@/components/ui/card";
import { CommandList } from "@/components/ui/command-list";
import { ConfirmAction } from "@/components/ui/confirm-action";
import { ListTable, type ListMessage } from "@/components/ui/list-table";
import { TD } from "@/components/ui/table-classes";
import { toUserError } from "@/lib/errors";
import { formatBytes, formatDateTime, formatRelative } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";

export function OrphanSets({ name }: { name: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const sets = useQuery(trpc.volume.orphanSets.queryOptions({ name }, { refetchInterval: 10_000 }));
  const discard = useMutation(trpc.volume.discardOrphanSet.mutationOptions());
  const [message, setMessage] = useState<ListMessage | null>(null);
  const now = useNow(5_000);
  if (!sets.data || (sets.data.length === 0 && message === null)) return null;

  const remote = sets.data.filter((set) => !set.exportable);
  return (
    <Card
      id="orphans"
      title="Orphan sets"
      description="Writes this volume received on a gateway that then lost it to another holder. They were never committed and are not part of the volume: export one to inspect or recover them (a raw image of the volume, zeros where the set has nothing), or discard it."
    >
      <ListTable headers={["Orphaned", "Size", "Reason", "Gateway"]} message={message}>
        {sets.data.map((set) => (
          <tr key={set.id} data-orphan-set={set.id}>
            <td className={`${TD} pl-4 sm:pl-5`} title={formatDateTime(set.orphanedAt)}>
              {formatRelative(set.orphanedAt, now)}
              <div className="font-mono text-xs text-slate-500">{set.id}</div>
            </td>
            <td className={TD}>
              {formatBytes(set.bytes)}
              <div className="text-xs text-slate-500">
                {set.dirtyChunks} uncommitted chunk{set.dirtyChunks === 1 ? "" : "s"}
              </div>
            </td>
            <td className={`${TD} text-sm`}>{set.reason}</td>
            <td className={`${TD} font-mono text-xs`}>{set.gatewayId}</td>
            <td className={`${TD} pr-4 text-right whitespace-nowrap sm:pr-5`}>
              <span className="inline-flex items-center gap-2">
                {set.exportable && (
                  <a
                    href={`/api/v1/orphans/${set.id}/image`}
                    download
                    className={buttonClasses("secondary", "sm")}
                    aria-label={`Export orphan set ${set.id} as a file`}
                  >
                    Export as a file
                  </a>
                )}
                <ConfirmAction
                  label="Discard"
                  confirmLabel="Confirm discard"
                  ariaLabel={`Discard orphan set ${set.id}`}
                  busy={discard.isPending}
                  onConfirm={() =>
                    discard.mutate(
                      { id: set.id },
                      {
                        onSuccess: () => {
                          setMessage({ text: `Orphan set ${set.id} discarded: gateway ${set.gatewayId} deletes its data.`, tone: "success" });
                          void queryClient.invalidateQueries({ queryKey: trpc.volume.orphanSets.queryKey({ name }) });
                        },
                        onError: (error) => setMessage({ text: toUserError(error).message, tone: "error" }),
                      },
                    )
                  }
                />
              </span>
            </td>
          </tr>
        ))}
      </ListTable>
      {remote.length > 0 && (
        <div className="mt-4">
          <p className="mb-3 text-sm text-slate-600">
            These sets are on another gateway&apos;s disk: run the command on that gateway&apos;s host to export one as a file.
          </p>
          <CommandList
            testIdPrefix="orphan-export-"
            commands={remote.map((set) => ({ id: set.id, label: `Export ${set.id} (gateway ${set.gatewayId})`, command: set.exportCommand }))}
          />
        </div>
      )}
    </Card>
  );
}
