/**
 * Input schemas of the volume verbs, shared by the tRPC routers and the REST handlers so both accept
 * exactly the same thing. Sizes are bytes or text with a binary unit ("10G"). Passphrases travel only
 * in request bodies.
 */
import { volumeNameSchema } from "@stratus/db";
import * as z from "zod";
import { parseSize } from "../units";

export const sizeInput = z.union([z.number().int().positive(), z.string()]).transform((value, ctx) => {
  if (typeof value === "number") return value;
  try {
    return parseSize(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

/** An existing passphrase (unlock, the old one at passwd): any length it was set with. */
export const passphraseInput = z.string().min(1, "the passphrase is empty").max(1024, "at most 1024 characters");
/** Fewest characters a new passphrase may have: the bucket header lets anyone who reads it guess offline. */
export const MIN_PASSPHRASE_LENGTH = 12;
/** A passphrase being set (create, passwd). */
export const newPassphraseInput = z
  .string()
  .min(1, "the passphrase is empty")
  .min(MIN_PASSPHRASE_LENGTH, `the passphrase needs at least ${MIN_PASSPHRASE_LENGTH} characters`)
  .max(1024, "at most 1024 characters");
export const volumeNameInput = volumeNameSchema;
/** Names of existing volumes are looked up, not validated: a wrong one is simply NOT_FOUND. */
export const existingVolumeName = z.string().min(1).max(200);

export const createVolumeInput = z.object({
  name: volumeNameInput,
  size: sizeInput,
  chunkSize: sizeInput.optional(),
  durability: z.enum(["local", "cloud"]).optional(),
  compression: z.enum(["zstd", "none"]).optional(),
  passphrase: newPassphraseInput.optional(),
  /** Default true; false needs a passphrase. */
  autoUnlock: z.boolean().optional(),
});
export type CreateVolumeInput = z.input<typeof createVolumeInput>;

export const volumeByName = z.object({ name: existingVolumeName });

export const resizeVolumeInput = z.object({
  name: existingVolumeName,
  size: sizeInput,
  /** Shrinking frees the data past the new end: the caller types the volume's name to confirm. */
  confirmShrink: z.string().optional(),
});

export const changePassphraseInput = z.object({
  name: existingVolumeName,
  oldPassphrase: passphraseInput.optional(),
  newPassphrase: newPassphraseInput,
});

export const unlockVolumeInput = z.object({ name: existingVolumeName, passphrase: passphraseInput });

export const deleteVolumeInput = z.object({
  name: existingVolumeName,
  /** The volume's name typed again (the dashboard requires it; REST and the CLI may omit it). */
  confirm: z.string().optional(),
});

export const deleteProgressInput = z.object({ name: existingVolumeName });

export const volumeMetricsInput = z.object({
  name: existingVolumeName,
  /** How far back, in minutes (default one hour, at most 7 days). */
  minutes: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(60),
});

export const recoverVolumesInput = z.object({ passphrase: passphraseInput.optional() });
