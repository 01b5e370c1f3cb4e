"use client";
/**
 * One volume: live figures (polled every 2 s), how to attach it, charts, and the actions that change
 * it (detach, resize, passphrase, unlock, lock, snapshots and clones, delete) with its activity log. A volume that is not the user's (or
 * does not exist) is one NOT_FOUND: the page says so without hinting which.
 */
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useCallback, useState, type ReactNode } from "react";
import { buttonClasses } from "@/components/ui/button";
import { Badge, Card, PageHeader } from "@/components/ui/card";
import { LiveRegion, Notice } from "@/components/ui/notice";
import { Spinner } from "@/components/ui/spinner";
import { errorCode, toUserError } from "@/lib/errors";
import { formatBytes, formatDateTime, formatRatio, formatRelative } from "@/lib/format";
import { LIVE_REFETCH_MS } from "@/lib/live";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";
import { ActivityLog } from "./activity-log";
import { AttachCommands } from "./attach-commands";
import { AttachedCell } from "./attached-cell";
import { LeaseCell } from "./lease-cell";
import { LockVolume } from "./lock-volume";
import { DeleteVolume } from "./delete-volume";
import { DetachVolume } from "./detach-volume";
import { DeviceAttachCommands } from "./device-attach-commands";
import { ImportProgress } from "./import-progress";
import { OrphanSets } from "./orphan-sets";
import { PassphraseForm } from "./passphrase-form";
import { ResizeForm } from "./resize-form";
import { ClonedFrom } from "./cloned-from";
import { SnapshotsCard } from "./snapshots-card";
import { UnlockForm } from "./unlock-form";
import { VolumeCharts } from "./volume-charts";
import { VolumeStatusBadge } from "./volume-status";

export function VolumeDetailView({ name, justCreated }: { name: string; justCreated: boolean }) {
  const trpc = useTRPC();
  // Once a delete starts, the page shows its progress; the volume itself is on its way out.
  const [deleteStarted, setDeleteStarted] = useState(false);
  const [deleted, setDeleted] = useState(false);
  const markDeleted = useCallback(() => setDeleted(true), []);
  // The lock and unlock forms replace each other: what the last one did stays said here.
  const [lockNotice, setLockNotice] = useState<string | null>(null);
  const volume = useQuery(trpc.volume.get.queryOptions({ name }, { refetchInterval: deleteStarted ? false : LIVE_REFETCH_MS }));
  const now = useNow();
  // A volume seen importing keeps the import's view until the job ends: a failed or cancelled one is deleted.
  const [importWatched, setImportWatched] = useState(false);
  const [importEnded, setImportEnded] = useState(false);
  const markImportEnded = useCallback(() => setImportEnded(true), []);
  if (volume.data?.state === "importing" && !importWatched) setImportWatched(true);

  const back = (
    <nav aria-label="Breadcrumb" className="mb-2 text-sm">
      <Link href="/volumes" className="text-slate-500 hover:text-slate-800">
        ← Volumes
      </Link>
    </nav>
  );

  if (volume.isPending) {
    return (
      <>
        {back}
        <p className="flex items-center gap-2 py-10 text-sm text-slate-500" role="status">
          <Spinner /> Loading {name}…
        </p>
      </>
    );
  }
  if (importWatched && (!volume.data || volume.data.state !== "active" || !importEnded)) {
    return (
      <>
        {back}
        <PageHeader
          title={
            <span className="inline-flex items-center gap-3">
              <span className="font-mono">{name}</span>
              {volume.data && <VolumeStatusBadge volume={volume.data} />}
            </span>
          }
          description={volume.data ? `${formatBytes(volume.data.sizeBytes)} · importing from a URL` : undefined}
        />
        <Card id="import" title="Import">
          <ImportProgress name={name} onFinished={markImportEnded} />
        </Card>
      </>
    );
  }
  if (volume.isError && !volume.data) {
    // After a completed delete the volume is gone: that is the expected end, not an error.
    return (
      <>
        {back}
        <PageHeader title={name} />
        {errorCode(volume.error) === "NOT_FOUND" ? (
          <Card>
            <p className="text-sm text-slate-700">There is no volume called {name} in your account (it may have been deleted).</p>
            <Link href="/volumes" className={`${buttonClasses("secondary")} mt-4`}>
              Back to volumes
            </Link>
          </Card>
        ) : (
          <Notice tone="error">{toUserError(volume.error).message}</Notice>
        )}
      </>
    );
  }

  const deleting = volume.data.state === "deleting" || deleteStarted;
  const v = { ...volume.data, state: deleting ? "deleting" : volume.data.state };
  return (
    <>
      {back}
      <PageHeader
        title={
          <span className="inline-flex items-center gap-3">
            <span className="font-mono">{v.name}</span>
            {deleted ? <Badge tone="red">Deleted</Badge> : <VolumeStatusBadge volume={v} />}
          </span>
        }
        description={
          <>
            {formatBytes(v.sizeBytes)} · {v.durability} durability · {v.compression} · {formatBytes(v.chunkSize)} chunks · created {formatDateTime(v.createdAt)}
            {v.clonedFrom && <ClonedFrom origin={v.clonedFrom} />}
            <span className="block font-mono text-xs text-slate-500" data-testid="volume-id">
              {v.id}
            </span>
          </>
        }
      />
      {justCreated && (
        <Notice tone="success" className="mb-6">
          Volume created. Attach it with one of the commands below.
        </Notice>
      )}

      <div className="space-y-6">
        {!deleting && (
          <dl className="grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6" aria-label="Live figures">
            <Figure label="Size" value={formatBytes(v.sizeBytes)} />
            <Figure label="Stored" value={formatBytes(v.storedBytes)} testId="detail-stored-bytes" />
            <Figure label="Compression" value={formatRatio(v.compressionRatio)} />
            <Figure label="Dirty (waiting)" value={formatBytes(v.dirtyBytes)} />
            <Figure label="Last commit" value={formatRelative(v.lastCommitAt, now)} title={formatDateTime(v.lastCommitAt)} />
            <Figure label="Attached" value={<AttachedCell attached={v.attached} now={now} />} testId="detail-attached" />
            <Figure label="Held by" value={<LeaseCell lease={v.lease} now={now} />} testId="detail-lease" />
          </dl>
        )}

        {!deleting && (
          <Card
            id="detach"
            title="Held by"
            description="Detach asks the holder's gateway to flush, commit and let go; force detach fences it without its cooperation."
          >
            <DetachVolume name={v.name} lease={v.lease} now={now} />
          </Card>
        )}

        {!deleting && !v.autoUnlock && (
          <Card
            id="unlock"
            title={v.unlocked ? "Unlocked" : "Locked"}
            description={
              v.unlocked
                ? "Clients can attach until you lock it again (at most 24 hours after the unlock). Lock it to require the passphrase before the next attach."
                : "This volume has no auto-unlock: enter its passphrase so clients can attach."
            }
          >
            {v.unlocked ? (
              <LockVolume name={v.name} attached={v.attached !== null || v.lease !== null} onLocked={setLockNotice} />
            ) : (
              <UnlockForm name={v.name} onUnlocked={setLockNotice} />
            )}
            <LiveRegion message={lockNotice} className="mt-3" />
          </Card>
        )}

        {!deleting && <OrphanSets name={v.name} />}

        {!deleting && (
          <Card id="attach-tls" title="Attach from a device" description="NBD over TLS with a device credential: run one of these on that machine.">
            <DeviceAttachCommands name={v.name} />
          </Card>
        )}

        {!deleting && (
          <Card
            id="attach"
            title="Attach on the gateway's machine"
            description="Plaintext NBD on loopback: it serves only the local admin's volumes (the embedded default)."
          >
            <AttachCommands name={v.name} />
          </Card>
        )}

        {!deleting && (
          <Card
            id="snapshots"
            title="Snapshots"
            description="A snapshot pins the volume as it is now, read-only, without copying data; clone one to get a writable volume from it."
          >
            <SnapshotsCard name={v.name} autoUnlock={v.autoUnlock} />
          </Card>
        )}

        {!deleting && (
          <Card id="charts" title="Usage" description="The last hour, sampled every 10 s while attached.">
            <VolumeCharts name={v.name} />
          </Card>
        )}

        {!deleting && (
          <div className="grid items-start gap-6 lg:grid-cols-2">
            <Card id="resize" title="Resize">
              <ResizeForm name={v.name} sizeBytes={v.sizeBytes} />
            </Card>
            <Card
              id="passphrase"
              title={v.hasPassphrase ? "Change passphrase" : "Add a passphrase"}
              description="Rewrites only the key slots; no data is re-encrypted."
            >
              <PassphraseForm name={v.name} hasPassphrase={v.hasPassphrase} />
            </Card>
          </div>
        )}

        <Card id="activity" title="Activity">
          <ActivityLog name={v.name} />
        </Card>

        <Card id="delete" title="Delete volume" className="ring-red-200">
          <DeleteVolume name={v.name} deleting={deleting} onStarted={() => setDeleteStarted(true)} onCompleted={markDeleted} />
        </Card>
      </div>
    </>
  );
}

function Figure({ label, value, title, testId }: { label: string; value: ReactNode; title?: string; testId?: string }) {
  return (
    <div className="rounded-lg bg-white px-4 py-3 shadow-sm ring-1 ring-slate-200">
      <dt className="text-xs font-medium text-slate-500">{label}</dt>
      <dd className="mt-1 text-lg font-semibold text-slate-900 tabular-nums" title={title} data-testid={testId}>
        {value}
      </dd>
    </div>
  );
}
