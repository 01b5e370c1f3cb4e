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
