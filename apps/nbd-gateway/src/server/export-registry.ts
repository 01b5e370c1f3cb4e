import type { BlockDevice } from "@stratus/storage";

/**
 * How the NBD server finds what to serve. The server knows nothing of databases or volumes:
 * it asks the registry for the list (NBD_OPT_LIST), and to open an export by name (GO / INFO /
 * EXPORT_NAME). The gateway's registry resolves names against the database and shares one
 * engine per volume across connections; tests use a registry over in-memory devices.
 */
export interface ExportSummary {
  name: string;
  description: string;
}

export interface OpenedExport {
  name: string;
  description: string;
  device: BlockDevice;
  /** Called once when the connection that opened it ends (engines are reference-counted). */
  release(): Promise<void>;
}

export interface ExportRegistry {
  list(): Promise<ExportSummary[]>;
  /** `undefined` when there is no export by that name (NBD_REP_ERR_UNKNOWN). */
  open(name: string): Promise<OpenedExport | undefined>;
}
