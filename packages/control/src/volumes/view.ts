/**
 * What a caller sees of a volume: its row merged with the live state the gateway holding it publishes
 * in Redis (attached, connections, clients, engine figures), else figures from the chunk map.
 */
import { findLiveLeases, volumeStoredTotals, type VolumeLeaseRow, type VolumeRow } from "@stratus/db";
import type { KeySlot } from "@stratus/storage";
import type { Runtime } from "../context";
import { hasUnlockGrant } from "../keys/unlock-grants";
import { readLiveStates, type LiveState } from "../live/live-state";

export interface AttachedView {
  gatewayId: string;
  connections: number;
  /** ISO time the volume was opened by that gateway. */
  since: string;
  clients: string[];
}

/** Who may write the volume now (its lease in the database), whichever gateway serves it. */
export interface LeaseView {
  /** The device credential's name, or "local" for the gateway's own plaintext loopback. */
  holder: string;
  deviceCredentialId: string | null;
  clientAddress: string | null;
  gatewayId: string;
  /** ISO times: taken, and when it lapses unless its gateway renews it. */
  since: string;
  expiresAt: string;
}

export interface VolumeView {
  id: string;
  name: string;
  sizeBytes: number;
  chunkSize: number;
  state: "active" | "deleting" | "importing";
  durability: "local" | "cloud";
  compression: "zstd" | "none";
  createdAt: string;
  /** An auto-unlock slot for this deployment's master key exists. */
  autoUnlock: boolean;
  hasPassphrase: boolean;
  /** It can be attached now: auto-unlock, or an unlock grant is in place. */
  unlocked: boolean;
  attached: AttachedView | null;
  lease: LeaseView | null;
  epoch: number;
  lastCommitAt: string | null;
  /** Bytes the volume's committed chunk objects take in the bucket. */
  storedBytes: number;
  /** Committed chunk objects. */
  chunksStored: number;
  /** Plain bytes / stored bytes of committed chunks (1 when nothing is stored). */
  compressionRatio: number;
  /** Engine figures while attached, else null. */
  dirtyBytes: number | null;
  cachedBytes: number | null;
  queueDepth: number | null;
  readBytes: number | null;
  writtenBytes: number | null;
  /** When the live figures were published (null when not attached). */
  liveAt: string | null;
  /** The snapshot this volume was cloned from (names as at clone time), or null. */
  clonedFrom: { volumeId: string; volumeName: string; snapshotId: string; snapshotName: string } | null;
}

export const slotsOf = (row: VolumeRow): KeySlot[] => row.keySlots;

export async function volumeViews(runtime: Runtime, rows: VolumeRow[]): Promise<VolumeView[]> {
  const ids = rows.map((row) => row.id);
  const [live, totals, grants, leases] = await Promise.all([
    readLiveStates(runtime.redis, runtime.config.prefix, ids),
    volumeStoredTotals(runtime.database.db, ids),
    Promise.all(rows.map((row) => hasUnlockGrant(runtime.redis, runtime.config.prefix, row.id))),
    findLiveLeases(runtime.database.db, ids, new Date()),
  ]);
  return rows.map((row, i) => viewOf(runtime, row, live.get(row.id), totals.get(row.id), grants[i]!, leases.get(row.id)));
}

export async function volumeView(runtime: Runtime, row: VolumeRow): Promise<VolumeView> {
  return (await volumeViews(runtime, [row]))[0]!;
}

function viewOf(
  runtime: Runtime,
  row: VolumeRow,
  live: LiveState | undefined,
  totals: { chunks: number; storedBytes: number } | undefined,
  granted: boolean,
  lease: VolumeLeaseRow | undefined,
): VolumeView {
  const slots = slotsOf(row);
  const autoUnlock = slots.some((slot) => slot.kind === "master" && slot.masterKeyId === runtime.masterKey.id);
  const stats = live?.stats;
  const storedBytes = stats?.storedBytes ?? totals?.storedBytes ?? 0;
  const chunksStored = stats?.chunksStored ?? totals?.chunks ?? 0;
  // Without the engine: plain bytes are at most chunks x chunk size (the last chunk may be shorter).
  const plain = Math.min(chunksStored * row.chunkSize, row.sizeBytes);
  const ratio = stats?.compressionRatio ?? (storedBytes > 0 ? plain / storedBytes : 1);
  const lastCommit = stats?.lastCommitAt !== undefined ? new Date(stats.lastCommitAt) : row.lastCommitAt;
  return {
    id: row.id,
    name: row.name,
    sizeBytes: row.sizeBytes,
    chunkSize: row.chunkSize,
    state: row.state,
    durability: row.durability,
    compression: row.compression,
    createdAt: row.createdAt.toISOString(),
    autoUnlock,
    hasPassphrase: slots.some((slot) => slot.kind === "passphrase"),
    unlocked: autoUnlock || granted,
    attached:
      live && live.connections > 0
        ? { gatewayId: live.gatewayId, connections: live.connections, since: new Date(live.attachedSince).toISOString(), clients: live.clients }
        : null,
    lease: lease
      ? {
          holder: lease.holderName,
          deviceCredentialId: lease.deviceCredentialId,
          clientAddress: lease.clientAddress,
          gatewayId: lease.gatewayId,
          since: lease.acquiredAt.toISOString(),
          expiresAt: lease.expiresAt.toISOString(),
        }
      : null,
    epoch: Math.max(stats?.epoch ?? 0, row.commitEpoch),
    lastCommitAt: lastCommit ? lastCommit.toISOString() : null,
    storedBytes,
    chunksStored,
    compressionRatio: Math.round(ratio * 100) / 100,
    dirtyBytes: stats?.dirtyBytes ?? null,
    cachedBytes: stats?.cachedBytes ?? null,
    queueDepth: stats?.queueDepth ?? null,
    readBytes: stats?.readBytes ?? null,
    writtenBytes: stats?.writtenBytes ?? null,
    liveAt: live ? new Date(live.updatedAt).toISOString() : null,
    clonedFrom: row.clonedFrom ?? null,
  };
}
