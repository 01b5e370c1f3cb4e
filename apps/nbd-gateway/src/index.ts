export { createNbdServer, DEFAULT_MAX_PAYLOAD, DEFAULT_HANDSHAKE_TIMEOUT_MS } from "./server/nbd-server";
export type { NbdServer, NbdServerOptions } from "./server/nbd-server";
export type { ExportRegistry, ExportSummary, OpenedExport } from "./server/export-registry";
export { transmissionFlagsFor } from "./server/handshake";
