/**
 * Who this gateway is in volume leases: an id stable across restarts (so a restarted gateway takes back
 * the leases of its earlier run at once instead of waiting for them to expire), and a run id new at
 * every start (so a lease can tell this run from the one before it).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";

export interface GatewayIdentity {
  gatewayId: string;
  gatewayRun: string;
}

/** STRATUS_GATEWAY_ID when set; else <dataDir>/gateway-id, created (0600) at the first start. */
export async function loadGatewayIdentity(configured: string | undefined, dataDir: string): Promise<GatewayIdentity> {
  return { gatewayId: configured ?? (await storedGatewayId(dataDir)), gatewayRun: randomUUID() };
}

async function storedGatewayId(dataDir: string): Promise<string> {
  const file = path.join(dataDir, "gateway-id");
  const existing = await readFile(file, "utf8").then(
    (text) => text.trim(),
    () => "",
  );
  if (existing !== "") return existing;
  try {
    // wx: of two processes starting on one data dir, one id wins and both read it.
    await writeFile(file, `gw-${randomBytes(8).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  } catch {
    // Written by the other process meanwhile.
  }
  return (await readFile(file, "utf8")).trim();
}
