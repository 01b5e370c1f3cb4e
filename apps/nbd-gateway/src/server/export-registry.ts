import type { BlockDevice, DeviceCapabilities } from "@stratus/storage";

/**
 * How the NBD server finds what to serve. The server knows nothing of databases or volumes:
 * it asks the registry for the list (NBD_OPT_LIST), to describe an export (NBD_OPT_INFO), and
 * to open one by name (GO / EXPORT_NAME). The gateway's registry resolves names against the
 * database and shares one engine per volume across connections; tests use a registry over
 * in-memory devices.
 */
export interface ExportSummary {
  name: string;
  description: string;
}

/** What NBD_OPT_INFO tells about an export, known without opening it. */
export interface ExportDescription extends ExportSummary {
  size: number;
  capabilities: DeviceCapabilities;
}

export interface OpenedExport {
  name: string;
  description: string;
  device: BlockDevice;
  /** Called once when the connection that opened it ends (engines are reference-counted). */
  release(): Promise<void>;
  /** Registers what to do when the export is taken away from this connection (fenced): close it. */
  onRevoked?(listener: () => void): void;
  /**
   * Registers what to do when the export is to be handed to another device: finish what is in flight,
   * answer the rest NBD_ESHUTDOWN, disconnect. The release that follows commits and gives the lease back.
   */
  onHandoff?(listener: () => void): void;
}

/** Who is opening an export, as far as the connection knows. */
export interface OpenContext {
  clientAddress?: string;
}

export interface ExportRegistry {
  list(): Promise<ExportSummary[]>;
  /** `undefined` when there is no export by that name (NBD_REP_ERR_UNKNOWN). */
  open(name: string, context?: OpenContext): Promise<OpenedExport | undefined>;
  /** NBD_OPT_INFO without opening; absent: INFO opens the export and releases it. */
  describe?(name: string): Promise<ExportDescription | undefined>;
}

/** The export exists but may not be opened now (another device holds it): the message says why. */
export class ExportRefusedError extends Error {
  override readonly name = "ExportRefusedError";
}
