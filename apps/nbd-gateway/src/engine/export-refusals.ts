/**
 * What a client is told about a volume it cannot have now (who holds it, since when, why), and the
 * description NBD_OPT_INFO and LIST show: the words of volume-engines.ts, kept apart from its rules.
 */
import type { VolumeLeaseRow, VolumeRow } from "@stratus/db";
import { formatSize } from "@stratus/control";
import { ExportRefusedError } from "../server/export-registry";

/** Who holds a volume, as the refused client is told. */
export interface Holder {
  holderName: string;
  since: Date;
  gatewayId?: string;
}

export function heldBy(lease: VolumeLeaseRow, ourGatewayId: string): Holder {
  return { holderName: lease.holderName, since: lease.acquiredAt, gatewayId: lease.gatewayId === ourGatewayId ? undefined : lease.gatewayId };
}

export function busy(row: VolumeRow, holder: Holder, why: string): ExportRefusedError {
  const where = holder.gatewayId === undefined ? "" : ` through gateway ${holder.gatewayId}`;
  return new ExportRefusedError(
    `volume ${row.name} is in use by ${holder.holderName}${where} since ${holder.since.toISOString()}: ${why}; detach it there, or force detach it`,
  );
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The promise's value, or undefined when it has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function describe(row: VolumeRow): string {
  return `Stratus volume ${row.name} (${formatSize(row.sizeBytes)}, ${formatSize(row.chunkSize)} chunks)`;
}
