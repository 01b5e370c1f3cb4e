/**
 * Key slots as stored in the volume header (and the database's jsonb column): the volume's data
 * key wrapped once per way to unlock it, as LUKS does. Nothing here is secret on its own: a
 * wrapped key is useless without the passphrase or the master key.
 */
import * as z from "zod";

/**
 * scrypt cost bounds accepted from a slot (a volume header is not authenticated), checked before any
 * derivation: scrypt needs 128 * N * r bytes, so a hostile header could otherwise ask for gigabytes.
 * 256 MiB is twice the default cost's memory; p multiplies only time, and is bounded too.
 */
export const SCRYPT_LIMITS = { maxN: 2 ** 20, maxR: 32, maxP: 4, maxMemoryBytes: 256 * 2 ** 20 } as const;

/** The memory one scrypt derivation needs (its V array), in bytes. */
export const scryptMemoryBytes = (cost: { N: number; r: number }): number => 128 * cost.N * cost.r;

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "base64");

export const scryptParamsSchema = z
  .object({
    name: z.literal("scrypt"),
    N: z
      .number()
      .int()
      .min(2)
      .max(SCRYPT_LIMITS.maxN)
      .refine((n) => (n & (n - 1)) === 0, "N must be a power of two"),
    r: z.number().int().min(1).max(SCRYPT_LIMITS.maxR),
    p: z.number().int().min(1).max(SCRYPT_LIMITS.maxP),
    salt: base64,
  })
  .refine((kdf) => scryptMemoryBytes(kdf) <= SCRYPT_LIMITS.maxMemoryBytes, {
    message: `scrypt N * r asks for more than ${SCRYPT_LIMITS.maxMemoryBytes / 2 ** 20} MiB`,
  });

export const passphraseSlotSchema = z.object({
  kind: z.literal("passphrase"),
  kdf: scryptParamsSchema,
  nonce: base64,
  wrapped: base64,
});

export const masterSlotSchema = z.object({
  kind: z.literal("master"),
  /** sha256(master key), first 8 bytes, hex: says which master key opens it, reveals nothing. */
  masterKeyId: z.string().regex(/^[0-9a-f]{16}$/),
  nonce: base64,
  wrapped: base64,
});

export const keySlotSchema = z.discriminatedUnion("kind", [passphraseSlotSchema, masterSlotSchema]);

export type ScryptParams = z.infer<typeof scryptParamsSchema>;
export type PassphraseSlot = z.infer<typeof passphraseSlotSchema>;
export type MasterSlot = z.infer<typeof masterSlotSchema>;
export type KeySlot = z.infer<typeof keySlotSchema>;
