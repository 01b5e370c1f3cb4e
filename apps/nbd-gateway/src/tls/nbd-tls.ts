/** The NBD server's TLS settings for the gateway: its certificate plus the device-credential authority. */
import type { Runtime } from "@stratus/control";
import type { GatewayConfig } from "../config/env";
import type { VolumeEngines } from "../engine/volume-engines";
import type { Logger } from "../logger";
import type { NbdServerTlsOptions } from "../server/nbd-server";
import { deviceAuthority } from "./device-authority";
import { loadServerCertificate } from "./server-certificate";

/** undefined when STRATUS_NBD_TLS is off. */
export async function nbdTlsOptions(
  config: Pick<GatewayConfig, "dataDir" | "nbd">,
  runtime: Pick<Runtime, "database" | "masterKey">,
  engines: Pick<VolumeEngines, "forScope">,
  logger: Logger,
): Promise<NbdServerTlsOptions | undefined> {
  const mode = config.nbd.tls.mode;
  if (mode === "off") return undefined;
  const certificate = await loadServerCertificate(config, runtime, logger);
  return { mode, ...certificate, ...deviceAuthority({ db: runtime.database.db, masterKey: runtime.masterKey.key, engines }) };
}
