"use client";
/**
 * A volume's snapshots: take one (an attached volume's holder commits first), list each with its epoch,
 * the bytes it names and the bytes only it holds (what deleting it frees), its read-only export
 * VOL@NAME with a command that copies it out, and per row Clone… and Delete (asked once more).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Fragment, useState } from "react";
import { Button } from "@/components/ui/button";
import { CommandList } from "@/components/ui/command-list";
import { ConfirmAction } from "@/components/ui/confirm-action";
import { TextField } from "@/components/ui/field";
import { ListTable, listFallback, type ListMessage } from "@/components/ui/list-table";
import { Notice } from "@/components/ui/notice";
import { TD } from "@/components/ui/table-classes";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { formatBytes, formatDateTime, formatRelative, sentence } from "@/lib/format";
import { snapshotCopyCommand } from "@/lib/snapshot-commands";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";
import { CloneSnapshotForm } from "./clone-snapshot-form";

export function SnapshotsCard({ name, autoUnlock }: { name: string; autoUnlock: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const snapshots = useQuery(trpc.snapshot.list.queryOptions({ name }, { refetchInterval: 10_000 }));
  const remove = useMutation(trpc.snapshot.delete.mutationOptions());
  const [message, setMessage] = useState<ListMessage | null>(null);
  const [cloning, setCloning] = useState<string | null>(null);
  const now = useNow(5_000);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: trpc.snapshot.list.queryKey({ name }) });

  const fallback = listFallback(snapshots, {
    loading: "Loading snapshots…",
    empty: "No snapshots yet.",
    error: snapshots.error ? toUserError(snapshots.error).message : undefined,
  });

  return (
    <div className="space-y-5">
      <TakeSnapshotForm name={name} onTaken={(text) => (setMessage({ text, tone: "success" }), refresh())} />
      {fallback ?? (
        <ListTable headers={["Snapshot", "Epoch", "Size", "Stored", "Only in this snapshot", "Export (read-only)"]} message={message}>
          {snapshots.data!.map((snapshot) => (
            <Fragment key={snapshot.id}>
              <tr data-snapshot={snapshot.name}>
                <td className={`${TD} pl-4 font-medium text-slate-900 sm:pl-5`}>
                  {snapshot.name}
                  <div className="text-xs font-normal text-slate-500" title={formatDateTime(snapshot.createdAt)}>
                    taken {formatRelative(snapshot.createdAt, now)}
                  </div>
                </td>
                <td className={`${TD} tabular-nums`}>{snapshot.epoch}</td>
                <td className={`${TD} tabular-nums`}>{formatBytes(snapshot.sizeBytes)}</td>
                <td className={`${TD} tabular-nums`} data-testid="snapshot-stored">
                  {formatBytes(snapshot.storedBytes)}
                </td>
                <td className={`${TD} tabular-nums`} data-testid="snapshot-exclusive" title="Freed when it is deleted (after the GC grace)">
                  {formatBytes(snapshot.exclusiveBytes)}
                </td>
                <td className={`${TD} font-mono text-xs`} data-testid="snapshot-export">
                  {snapshot.exportName}
                </td>
                <td className={`${TD} pr-4 text-right sm:pr-5`}>
                  <span className="inline-flex gap-2">
                    <Button variant="secondary" size="sm" aria-label={`Clone ${snapshot.name}`} onClick={() => setCloning(snapshot.name)}>
                      Clone…
                    </Button>
                    <ConfirmAction
                      label="Delete"
                      confirmLabel="Confirm delete"
                      ariaLabel={`Delete snapshot ${snapshot.name}`}
                      busy={remove.isPending}
                      onConfirm={() =>
                        remove.mutate(
                          { name, snapshot: snapshot.name },
                          {
                            onSuccess: (outcome) => (setMessage({ text: sentence(outcome.message), tone: "success" }), refresh()),
                            onError: (error) => setMessage({ text: toUserError(error).message, tone: "error" }),
                          },
                        )
                      }
                    />
                  </span>
                </td>
              </tr>
              {cloning === snapshot.name && (
                <tr>
                  <td colSpan={7} className="px-4 pb-4 sm:px-5">
                    <CloneSnapshotForm exportName={snapshot.exportName} parentAutoUnlock={autoUnlock} onCancel={() => setCloning(null)} />
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
        </ListTable>
      )}
      {snapshots.data && snapshots.data.length > 0 && <SnapshotCommands name={name} exports={snapshots.data.map((s) => s.exportName)} />}
    </div>
  );
}

function TakeSnapshotForm({ name, onTaken }: { name: string; onTaken: (message: string) => void }) {
  const trpc = useTRPC();
  const take = useMutation(trpc.snapshot.create.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  return (
    <form
      noValidate
      method="post"
      aria-label="Take snapshot"
      className="space-y-3"
      onSubmit={(event) => {
        event.preventDefault();
        const form = event.currentTarget;
        const snapshot = String(new FormData(form).get("snapshot") ?? "").trim();
        if (snapshot === "") return setProblem({ field: "snapshot", message: "Name the snapshot." });
        setProblem(null);
        take.mutate(
          { name, snapshot },
          {
            onError: (error) => setProblem(toUserError(error)),
            onSuccess: (taken) => {
              form.reset();
              onTaken(`Took snapshot ${taken.name} at epoch ${taken.epoch}: export ${taken.exportName}, read-only.`);
            },
          },
        );
      }}
    >
      {formError(problem, ["snapshot"]) && <Notice tone="error">{formError(problem, ["snapshot"])}</Notice>}
      <div className="flex flex-wrap items-end gap-3">
        <TextField
          className="min-w-56 flex-1"
          label="Snapshot name"
          name="snapshot"
          autoComplete="off"
          hint="If a client is attached, its gateway commits first: the snapshot holds what was flushed."
          error={fieldError(problem, "snapshot")}
        />
        <Button type="submit" busy={take.isPending} className="mb-5">
          Take snapshot
        </Button>
      </div>
    </form>
  );
}

/** How to read each snapshot: the volume's own copy command (a device's over TLS, else loopback) aimed at VOL@NAME. */
function SnapshotCommands({ name, exports }: { name: string; exports: string[] }) {
  const trpc = useTRPC();
  const devices = useQuery(trpc.devices.list.queryOptions());
  const device = (devices.data ?? []).find((d) => d.status === "active" && (d.volumes === null || d.volumes.includes(name)));
  const tls = useQuery({ ...trpc.devices.attachCommands.queryOptions({ name, device: device?.id ?? "" }), enabled: device !== undefined });
  const loopback = useQuery(trpc.volume.attachCommands.queryOptions({ name }));
  const tlsCopy = tls.data?.commands.find((c) => c.id === "nbdcopy-psk");
  const loopbackCopy = loopback.data && !loopback.data.tls ? loopback.data.commands.find((c) => c.tool === "nbdcopy") : undefined;
  const base = tlsCopy
    ? { command: tlsCopy.command, exportName: tls.data!.exportName }
    : loopbackCopy && { command: loopbackCopy.command, exportName: loopback.data!.exportName };
  if (!base) return null;
  const via = tlsCopy ? `over TLS as device ${tls.data!.device.name}` : "on the gateway's machine";
  const commands = exports.flatMap((exportName) => {
    const command = snapshotCopyCommand(base.command, base.exportName, exportName, `${exportName.slice(name.length + 1)}.img`);
    return command ? [{ id: exportName, label: `Copy ${exportName} out (read-only, ${via})`, command }] : [];
  });
  return (
    <div className="space-y-3">
      <p className="text-sm text-slate-600">
        Each snapshot is served read-only as NBD export <span className="font-mono">VOLUME@SNAPSHOT</span>: any client can read it while the volume is written;
        a write to it fails.
      </p>
      <CommandList commands={commands} testIdPrefix="snapshot-command-" />
    </div>
  );
}
