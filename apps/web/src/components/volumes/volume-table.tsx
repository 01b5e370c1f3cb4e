"use client";
/**
 * The user's volumes with their live state. Polls `volume.list` every 2 s (the gateways publish at
 * that rate), so bytes stored, dirty bytes and attachments change in place without a reload.
 */
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { buttonClasses } from "@/components/ui/button";
import { Notice } from "@/components/ui/notice";
import { Spinner } from "@/components/ui/spinner";
import { toUserError } from "@/lib/errors";
import { formatBytes, formatDateTime, formatRatio, formatRelative } from "@/lib/format";
import { LIVE_REFETCH_MS } from "@/lib/live";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";
import { AttachedCell } from "./attached-cell";
import { VolumeStatusBadge } from "./volume-status";

const TH = "px-3 py-2.5 text-left text-xs font-semibold uppercase tracking-wide text-slate-500 whitespace-nowrap";
const TD = "px-3 py-3 align-top whitespace-nowrap text-sm";

export function VolumeTable() {
  const trpc = useTRPC();
  const volumes = useQuery(trpc.volume.list.queryOptions(undefined, { refetchInterval: LIVE_REFETCH_MS }));
  const now = useNow();

  if (volumes.isPending) {
    return (
      <div className="flex items-center gap-2 py-10 text-sm text-slate-500" role="status">
        <Spinner /> Loading volumes…
      </div>
    );
  }
  if (volumes.isError && !volumes.data) return <Notice tone="error">{toUserError(volumes.error).message}</Notice>;
  const list = volumes.data ?? [];
  if (list.length === 0) {
    return (
      <div className="py-12 text-center">
        <h2 className="text-base font-semibold text-slate-900">No volumes yet</h2>
        <p className="mt-1 text-sm text-slate-600">A volume is a disk you attach over NBD; it costs only what you write to it.</p>
        <Link href="/volumes/new" className={`${buttonClasses("primary")} mt-4`}>
          Create your first volume
        </Link>
      </div>
    );
  }

  return (
    <div>
      <div className="-mx-4 overflow-x-auto sm:-mx-5">
        <table className="min-w-full divide-y divide-slate-200" aria-describedby="volumes-live-note">
          <thead>
            <tr>
              <th scope="col" className={`${TH} pl-4 sm:pl-5`}>
                Name
              </th>
              <th scope="col" className={TH}>
                Status
              </th>
              <th scope="col" className={`${TH} text-right`}>
                Size
              </th>
              <th scope="col" className={`${TH} text-right`}>
                Stored
              </th>
              <th scope="col" className={`${TH} text-right`}>
                Ratio
              </th>
              <th scope="col" className={`${TH} text-right`}>
                Dirty
              </th>
              <th scope="col" className={TH}>
                Last commit
              </th>
              <th scope="col" className={`${TH} pr-4 sm:pr-5`}>
                Attached
              </th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {list.map((volume) => (
              <tr key={volume.id} className="hover:bg-slate-50" data-volume={volume.name}>
                <td className={`${TD} pl-4 sm:pl-5`}>
                  <Link href={`/volumes/${encodeURIComponent(volume.name)}`} className="font-medium text-indigo-700 hover:text-indigo-500">
                    {volume.name}
                  </Link>
                  <div className="text-xs text-slate-500">
                    {volume.durability} · {volume.compression} · {volume.hasPassphrase ? "passphrase" : "auto-unlock"}
                  </div>
                </td>
                <td className={TD}>
                  <VolumeStatusBadge volume={volume} />
                </td>
                <td className={`${TD} text-right tabular-nums`}>{formatBytes(volume.sizeBytes)}</td>
                <td className={`${TD} text-right tabular-nums`} data-testid="stored-bytes">
                  {formatBytes(volume.storedBytes)}
                </td>
                <td className={`${TD} text-right tabular-nums`}>{formatRatio(volume.compressionRatio)}</td>
                <td className={`${TD} text-right tabular-nums`}>{formatBytes(volume.dirtyBytes)}</td>
                <td className={TD} title={formatDateTime(volume.lastCommitAt)}>
                  {formatRelative(volume.lastCommitAt, now)}
                </td>
                <td className={`${TD} pr-4 sm:pr-5`} data-testid="attached">
                  <AttachedCell attached={volume.attached} now={now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p id="volumes-live-note" className="mt-3 text-xs text-slate-500">
        Live: refreshed every {LIVE_REFETCH_MS / 1000} s{volumes.dataUpdatedAt ? ` · updated ${formatRelative(volumes.dataUpdatedAt, now)}` : ""}
        {volumes.isError ? " · the last refresh failed, retrying" : ""}
      </p>
    </div>
  );
}
