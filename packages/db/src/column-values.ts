/**
 * The values some text columns may hold, apart from the tables in schema.ts: the CLI checks its input
 * against them without loading drizzle and the table definitions.
 */

export const VOLUME_STATES = ["active", "deleting", "importing"] as const;
export type VolumeState = (typeof VOLUME_STATES)[number];

export const VOLUME_DURABILITIES = ["local", "cloud"] as const;
export type VolumeDurability = (typeof VOLUME_DURABILITIES)[number];

/** Chunk compression a volume was created with. Widen the CHECK in schema.ts (new migration) when a codec is added. */
export const VOLUME_COMPRESSIONS = ["zstd", "none"] as const;
export type VolumeCompression = (typeof VOLUME_COMPRESSIONS)[number];
