"use client";
/**
 * "Cloned from VOL@SNAP" under a clone's title, linking the parent while it still exists (the same
 * volume id: a deleted parent's name may have been reused). The snapshot itself may be gone; the clone
 * does not need it.
 */
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useTRPC } from "@/lib/trpc";

export function ClonedFrom({ origin }: { origin: { volumeId: string; volumeName: string; snapshotName: string } }) {
  const trpc = useTRPC();
  const parent = useQuery(trpc.volume.get.queryOptions({ name: origin.volumeName }, { retry: false }));
  const label = `${origin.volumeName}@${origin.snapshotName}`;
  const exists = parent.data?.id === origin.volumeId && parent.data.state === "active";
  return (
    <span className="block text-sm text-slate-600" data-testid="cloned-from">
      Cloned from{" "}
      {exists ? (
        <Link href={`/volumes/${encodeURIComponent(origin.volumeName)}`} className="font-mono text-sky-700 hover:underline">
          {label}
        </Link>
      ) : (
        <span className="font-mono">
          {label}
          {parent.isError || (parent.data && !exists) ? " (parent deleted)" : ""}
        </span>
      )}
    </span>
  );
}
