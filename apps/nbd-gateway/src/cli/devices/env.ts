/**
 * Where the CLI keeps a machine's device credentials and its attachments: the user's config
 * directory, $XDG_CONFIG_HOME/stratus or ~/.config/stratus (nothing else in the CLI reads the environment).
 */
import os from "node:os";
import path from "node:path";

export interface CliPaths {
  /** ~/.config/stratus */
  configDir: string;
  /** One folder per device credential (keys.psk, client-cert.pem, client-key.pem, ca-cert.pem). */
  devicesDir: string;
  /** What `stratus attach` started, so `stratus detach` can undo it. */
  attachmentsDir: string;
  home: string;
  /** $PATH's folders, where the image tools (qemu-img, nbdcopy, e2image) are looked for. */
  searchPath: string[];
}

export function loadCliPaths(env: NodeJS.ProcessEnv = process.env): CliPaths {
  const home = env.HOME || os.homedir();
  const configDir = path.join(env.XDG_CONFIG_HOME || path.join(home, ".config"), "stratus");
  return {
    configDir,
    devicesDir: path.join(configDir, "devices"),
    attachmentsDir: path.join(configDir, "attachments"),
    home,
    searchPath: (env.PATH ?? "").split(path.delimiter).filter(Boolean),
  };
}

/** For `volume import --server-side s3://…`: the S3 endpoint and keys, from STRATUS_IMPORT_S3_*, sent only in the request body. */
export function loadImportS3Settings(env: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  const s3 = {
    endpoint: env.STRATUS_IMPORT_S3_ENDPOINT,
    region: env.STRATUS_IMPORT_S3_REGION,
    accessKeyId: env.STRATUS_IMPORT_S3_ACCESS_KEY_ID,
    secretAccessKey: env.STRATUS_IMPORT_S3_SECRET_ACCESS_KEY,
  };
  const set = Object.entries(s3).filter((entry): entry is [string, string] => !!entry[1]);
  return set.length > 0 ? Object.fromEntries(set) : undefined;
}
