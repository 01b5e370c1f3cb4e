/**
 * Whether a volume is attached, for the verbs that must not run under a writer (delete, shrink): the
 * lease in the database is the truth. Redis live state lags a detach by up to its publish interval.
 */
import { findLiveLease, type VolumeLeaseRow, type VolumeRow } from "@stratus/db";
import type { ServiceContext } from "../context";
import { ServiceError } from "../errors";

/** "laptop (10.0.0.2) since 2026-12-06 20:41 UTC" */
export function describeHolder(lease: VolumeLeaseRow): string {
  const address = lease.clientAddress ? ` (${lease.clientAddress})` : "";
  return `${lease.holderName}${address} since ${lease.acquiredAt.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** Throws CONFLICT naming the holder when a live lease holds the volume; `doing` completes "detach it before …". */
export async function requireDetached(ctx: ServiceContext, row: VolumeRow, doing: string): Promise<void> {
  const lease = await findLiveLease(ctx.runtime.database.db, row.id, new Date());
  if (lease) throw new ServiceError("CONFLICT", `volume ${row.name} is attached by ${describeHolder(lease)}; detach it before ${doing}`);
}
