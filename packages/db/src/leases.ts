/**
 * Volume leases: one writer at a time. Taking a lease raises the volume's fencing token in the same
 * transaction (the volume row is locked first, so two takers serialize), and commits carry that token,
 * so a holder that lost its lease can no longer commit. Times come from the caller's clock: every
 * function takes `now`, so tests move time instead of waiting for it.
 */
import { and, eq, gt, inArray, sql } from "drizzle-orm";
import type { Db } from "./client";
import { DbError } from "./errors";
import { volumeLeases, volumes, type VolumeLeaseRow } from "./schema";

export interface LeaseHolder {
  /** The gateway, stable across its restarts. */
  gatewayId: string;
  /** This process run of the gateway: a lease of an earlier run of the same gateway is free to take. */
  gatewayRun: string;
  /** The device credential, or null for the local admin's plaintext loopback. */
  deviceCredentialId: string | null;
  holderName: string;
  clientAddress: string | null;
}

export type LeaseAttempt =
  /** The caller holds the lease now, with this token (a new one, or its own when it already held it). */
  | { kind: "acquired"; lease: VolumeLeaseRow; previous?: VolumeLeaseRow }
  /** Another live holder has it: ask it to hand over, or force. */
  | { kind: "held"; lease: VolumeLeaseRow };

export interface AcquireLeaseInput {
  volumeId: string;
  holder: LeaseHolder;
  ttlMs: number;
  now: Date;
  /** Take it even from a live holder (force detach): that holder is fenced. */
  force?: boolean;
}

const sameHolder = (lease: VolumeLeaseRow, holder: LeaseHolder) =>
  lease.gatewayId === holder.gatewayId && lease.gatewayRun === holder.gatewayRun && lease.deviceCredentialId === holder.deviceCredentialId;

/**
 * Takes the volume's lease when it is free, expired, held by an earlier run of the same gateway, or
 * `force` is set; returns it unchanged (same token) when the caller already holds it; else reports
 * the live holder. A missing volume -> VOLUME_NOT_FOUND.
 */
export async function acquireLease(db: Db, input: AcquireLeaseInput): Promise<LeaseAttempt> {
  const { volumeId, holder, now } = input;
  const expiresAt = new Date(now.getTime() + input.ttlMs);
  return db.transaction(async (tx) => {
    // The volume row's lock orders every taker of this volume, with or without a lease row yet.
    const [volume] = await tx.select({ id: volumes.id }).from(volumes).where(eq(volumes.id, volumeId)).for("update");
    if (!volume) throw new DbError("VOLUME_NOT_FOUND", `no volume with id ${volumeId}`);
    const [current] = await tx.select().from(volumeLeases).where(eq(volumeLeases.volumeId, volumeId));

    if (current && sameHolder(current, holder)) {
      const [renewed] = await tx
        .update(volumeLeases)
        .set({ heartbeatAt: now, expiresAt, clientAddress: holder.clientAddress })
        .where(eq(volumeLeases.volumeId, volumeId))
        .returning();
      return { kind: "acquired", lease: renewed! };
    }
    const live = current !== undefined && current.expiresAt > now;
    const earlierRunOfOurs = current !== undefined && current.gatewayId === holder.gatewayId && current.gatewayRun !== holder.gatewayRun;
    if (live && !earlierRunOfOurs && !input.force) return { kind: "held", lease: current };

    const [raised] = await tx
      .update(volumes)
      .set({ fencingToken: sql`${volumes.fencingToken} + 1` })
      .where(eq(volumes.id, volumeId))
      .returning({ fencingToken: volumes.fencingToken });
    const row = { volumeId, fencingToken: raised!.fencingToken, ...holder, acquiredAt: now, heartbeatAt: now, expiresAt };
    const [taken] = await tx.insert(volumeLeases).values(row).onConflictDoUpdate({ target: volumeLeases.volumeId, set: row }).returning();
    return { kind: "acquired", lease: taken!, previous: current };
  });
}

/**
 * Extends the leases a gateway run holds with these tokens. Returns the volume ids whose lease it no
 * longer holds (taken over, forced, deleted): the caller must stop serving them at once.
 */
export async function renewLeases(
  db: Db,
  input: { gatewayId: string; gatewayRun: string; held: ReadonlyMap<string, number>; ttlMs: number; now: Date },
): Promise<string[]> {
  if (input.held.size === 0) return [];
  const expiresAt = new Date(input.now.getTime() + input.ttlMs);
  const renewed = await db
    .update(volumeLeases)
    .set({ heartbeatAt: input.now, expiresAt })
    .where(and(eq(volumeLeases.gatewayId, input.gatewayId), eq(volumeLeases.gatewayRun, input.gatewayRun)))
    .returning({ volumeId: volumeLeases.volumeId, fencingToken: volumeLeases.fencingToken });
  const still = new Set(renewed.filter((r) => input.held.get(r.volumeId) === r.fencingToken).map((r) => r.volumeId));
  return [...input.held.keys()].filter((volumeId) => !still.has(volumeId));
}

/** Gives the lease up, if the caller still holds it with this token. Returns whether it did. */
export async function releaseLease(db: Db, volumeId: string, fencingToken: number): Promise<boolean> {
  const released = await db
    .delete(volumeLeases)
    .where(and(eq(volumeLeases.volumeId, volumeId), eq(volumeLeases.fencingToken, fencingToken)))
    .returning({ volumeId: volumeLeases.volumeId });
  return released.length > 0;
}

/**
 * Force detach: takes the live lease away from its holder without its cooperation. In one transaction
 * (the volume row locked first, as acquireLease does) the volume's fencing token is raised, so the
 * holder's next commit is refused even before it notices, and the lease row is deleted. Returns the
 * live lease it removed, or undefined when none was live (an expired row is removed and fenced all the
 * same; with no row at all nothing changes). A missing volume -> VOLUME_NOT_FOUND.
 */
export async function forceReleaseLease(db: Db, volumeId: string, now: Date): Promise<VolumeLeaseRow | undefined> {
  return db.transaction(async (tx) => {
    const [volume] = await tx.select({ id: volumes.id }).from(volumes).where(eq(volumes.id, volumeId)).for("update");
    if (!volume) throw new DbError("VOLUME_NOT_FOUND", `no volume with id ${volumeId}`);
    const [removed] = await tx.delete(volumeLeases).where(eq(volumeLeases.volumeId, volumeId)).returning();
    if (!removed) return undefined;
    // Raised for an expired row too: its holder may still be running (a heartbeat that could not reach
    // the database) and must not commit after this.
    await tx
      .update(volumes)
      .set({ fencingToken: sql`${volumes.fencingToken} + 1` })
      .where(eq(volumes.id, volumeId));
    return removed.expiresAt > now ? removed : undefined;
  });
}

/** The volume's live lease (unexpired at `now`), if any: what delete and shrink check, and what the pages show. */
export async function findLiveLease(db: Db, volumeId: string, now: Date): Promise<VolumeLeaseRow | undefined> {
  const [row] = await db
    .select()
    .from(volumeLeases)
    .where(and(eq(volumeLeases.volumeId, volumeId), gt(volumeLeases.expiresAt, now)));
  return row;
}

/** The live leases on an owner's volumes, by volume id (the volume list's "attached by … since …"). */
export async function listLiveLeases(db: Db, ownerId: string, now: Date): Promise<Map<string, VolumeLeaseRow>> {
  const rows = await db
    .select({ lease: volumeLeases })
    .from(volumeLeases)
    .innerJoin(volumes, eq(volumes.id, volumeLeases.volumeId))
    .where(and(eq(volumes.ownerId, ownerId), gt(volumeLeases.expiresAt, now)));
  return new Map(rows.map(({ lease }) => [lease.volumeId, lease]));
}

/** The live leases among these volumes, by volume id (what the volume views show as the holder). */
export async function findLiveLeases(db: Db, volumeIds: readonly string[], now: Date): Promise<Map<string, VolumeLeaseRow>> {
  if (volumeIds.length === 0) return new Map();
  const rows = await db
    .select()
    .from(volumeLeases)
    .where(and(inArray(volumeLeases.volumeId, [...volumeIds]), gt(volumeLeases.expiresAt, now)));
  return new Map(rows.map((lease) => [lease.volumeId, lease]));
}
