/**
 * Serves one in-memory export for manual checks and protocol benchmarks:
 *   npx tsx apps/nbd-gateway/src/testing/serve-memory.ts [port] [sizeMiB]
 * then e.g. `nbdinfo nbd://127.0.0.1:PORT/memory`. Not used by the gateway itself.
 */
import pino from "pino";
import { createNbdServer } from "../server/nbd-server";
import { MemoryDevice } from "./memory-device";
import { MemoryExportRegistry } from "./memory-export-registry";

const port = Number(process.argv[2] ?? 10999);
const sizeMiB = Number(process.argv[3] ?? 1024);
const registry = new MemoryExportRegistry().add("memory", new MemoryDevice({ size: sizeMiB * 1024 * 1024 }), "in-memory test export");
const server = createNbdServer({ registry, logger: pino({ level: process.env.STRATUS_LOG_LEVEL ?? "warn" }) });
void server.listen(port, "127.0.0.1").then(({ port: bound }) => console.log(`nbd://127.0.0.1:${bound}/memory`));
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
