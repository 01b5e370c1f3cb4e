/**
 * Where a volume's chunks live in the bucket:
 *   vol/<volumeId>/c/<chunk index, 16 hex digits>/<generation, 16 hex digits>
 * Zero-padded hex makes byte order equal numeric order, so a listing walks chunks in order and
 * resumes with StartAfter; every generation of a chunk sorts together, oldest first.
 */
import { StorageError } from "../errors";

const HEX_DIGITS = 16;

/**
 * generation = epoch * GENERATIONS_PER_EPOCH + salt (the writer's fencing token mod this): every
 * writer names its objects apart, and generations sort by epoch first (the GC's orphan rule).
 */
export const GENERATIONS_PER_EPOCH = 65_536;
const CHUNK_KEY = /^vol\/([^/]+)\/c\/([0-9a-f]{16})\/([0-9a-f]{16})$/;

export interface ChunkKeyParts {
  volumeId: string;
  index: number;
  generation: number;
}

export function volumePrefix(volumeId: string): string {
  validateVolumeId(volumeId);
  return `vol/${volumeId}/`;
}

export function chunkPrefix(volumeId: string): string {
  return `${volumePrefix(volumeId)}c/`;
}

export function chunkKey(volumeId: string, index: number, generation: number): string {
  return `${chunkPrefix(volumeId)}${toHex(index)}/${toHex(generation)}`;
}

/** The parts of a chunk key, or undefined for any other key (e.g. a future volume header). */
export function parseChunkKey(key: string): ChunkKeyParts | undefined {
  const match = CHUNK_KEY.exec(key);
  if (!match) return undefined;
  const index = Number.parseInt(match[2]!, 16);
  const generation = Number.parseInt(match[3]!, 16);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(generation)) return undefined;
  return { volumeId: match[1]!, index, generation };
}

function toHex(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new StorageError("EINVAL", `not a chunk number: ${value}`);
  return value.toString(16).padStart(HEX_DIGITS, "0");
}

function validateVolumeId(volumeId: string): void {
  if (volumeId.length === 0 || volumeId.includes("/") || volumeId === "." || volumeId === "..") {
    throw new StorageError("EINVAL", `invalid volume id ${JSON.stringify(volumeId)}`);
  }
}
