/**
 * Every volume is encrypted with its own random 256-bit data key, stored only wrapped in key slots
 * (key-slot.ts): a passphrase slot (scrypt) and/or an auto-unlock slot wrapped by the master key,
 * with AES-256-GCM binding the volume id and slot kind, so a slot moved or relabelled does not open.
 * Changing the passphrase rewraps the same data key (no chunk object changes). A failed unlock
 * changes nothing and says only "wrong passphrase" (or "wrong master key").
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";
import { StorageError } from "../errors";
import { DATA_KEY_BYTES } from "../codec/sealed-codec";
import { checkMasterKey, masterKeyId } from "./master-key";
import { keySlotSchema, scryptMemoryBytes, scryptParamsSchema, type KeySlot, type MasterSlot, type PassphraseSlot, type ScryptParams } from "./key-slot";

/**
 * Default scrypt cost for new slots: N=2^17, r=8, p=1 (128 MiB; its time: docs/performance.md).
 * Slots made at a lower cost still open (each slot keeps its parameters). Tests pass a lower N
 * through `kdf`.
 */
export const DEFAULT_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
export type ScryptCost = Partial<Pick<ScryptParams, "N" | "r" | "p">>;

const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface CreateKeySlotsInput {
  volumeId: string;
  passphrase?: string;
  masterKey?: Buffer;
  /** scrypt cost for the passphrase slot (default DEFAULT_SCRYPT). */
  kdf?: ScryptCost;
}

/** A new random data key and its slots. With no passphrase, the master slot is the only slot. */
export async function createKeySlots(input: CreateKeySlotsInput): Promise<{ dataKey: Buffer; slots: KeySlot[] }> {
  if (input.passphrase === undefined && input.masterKey === undefined) {
    throw new StorageError("EINVAL", "a volume needs a passphrase or a master key (auto-unlock)");
  }
  const dataKey = randomBytes(DATA_KEY_BYTES);
  const slots: KeySlot[] = [];
  if (input.passphrase !== undefined) slots.push(await passphraseSlot(input.volumeId, dataKey, input.passphrase, input.kdf));
  if (input.masterKey !== undefined) slots.push(masterSlot(input.volumeId, dataKey, input.masterKey));
  return { dataKey, slots };
}

export interface UnlockDataKeyInput {
  volumeId: string;
  slots: readonly KeySlot[];
  passphrase?: string;
  masterKey?: Buffer;
}

/**
 * The data key from the first slot that opens with what was given (master slot first: no KDF).
 * Throws StorageError("EPERM", "wrong passphrase") when none does.
 */
export async function unlockDataKey(input: UnlockDataKeyInput): Promise<Buffer> {
  const slots = input.slots.map((slot) => parseSlot(slot));
  if (input.masterKey !== undefined) {
    const id = masterKeyId(input.masterKey);
    for (const slot of slots) {
      if (slot.kind !== "master" || slot.masterKeyId !== id) continue;
      const dataKey = unwrap(input.masterKey, slot, slotAad(input.volumeId, slot.kind));
      if (dataKey !== undefined) return dataKey;
    }
  }
  if (input.passphrase !== undefined) {
    for (const slot of slots) {
      if (slot.kind !== "passphrase") continue;
      const kek = await deriveKey(input.passphrase, slot.kdf);
      const dataKey = unwrap(kek, slot, slotAad(input.volumeId, slot.kind));
      if (dataKey !== undefined) return dataKey;
    }
    throw new StorageError("EPERM", "wrong passphrase");
  }
  if (input.masterKey !== undefined) {
    throw new StorageError("EPERM", `wrong master key: no auto-unlock slot of volume ${input.volumeId} opens with master key ${masterKeyId(input.masterKey)}`);
  }
  throw new StorageError("EPERM", `volume ${input.volumeId} is locked: unlock it with its passphrase`);
}

export type ChangePassphraseInput = {
  volumeId: string;
  slots: readonly KeySlot[];
  newPassphrase: string;
  kdf?: ScryptCost;
} & ({ oldPassphrase: string; dataKey?: undefined } | { dataKey: Buffer; oldPassphrase?: undefined });

/**
 * The slots with every passphrase slot replaced by one for `newPassphrase` (master slots kept).
 * Proves knowledge of the volume with `oldPassphrase`, or passes the `dataKey` the gateway already
 * unlocked (e.g. through auto-unlock; it cannot be checked here, so it must come from an unlock).
 * Adds a passphrase slot to a volume that had only auto-unlock.
 */
export async function changePassphrase(input: ChangePassphraseInput): Promise<KeySlot[]> {
  const slots = input.slots.map((slot) => parseSlot(slot));
  let dataKey: Buffer;
  if (input.oldPassphrase !== undefined) {
    dataKey = await unlockDataKey({ volumeId: input.volumeId, slots, passphrase: input.oldPassphrase });
  } else {
    checkDataKey(input.dataKey);
    dataKey = input.dataKey;
  }
  const kept = slots.filter((slot) => slot.kind !== "passphrase");
  return [await passphraseSlot(input.volumeId, dataKey, input.newPassphrase, input.kdf), ...kept];
}

/** Adds (or replaces) the auto-unlock slot for `masterKey`. */
export function addMasterSlot(input: { volumeId: string; slots: readonly KeySlot[]; dataKey: Buffer; masterKey: Buffer }): KeySlot[] {
  checkDataKey(input.dataKey);
  const id = masterKeyId(input.masterKey);
  const others = input.slots.map((slot) => parseSlot(slot)).filter((slot) => !(slot.kind === "master" && slot.masterKeyId === id));
  return [...others, masterSlot(input.volumeId, input.dataKey, input.masterKey)];
}

/** Removes every auto-unlock slot; refuses when that would leave no way to unlock the volume. */
export function removeMasterSlots(input: { volumeId: string; slots: readonly KeySlot[] }): KeySlot[] {
  const remaining = input.slots.map((slot) => parseSlot(slot)).filter((slot) => slot.kind !== "master");
  if (remaining.length === 0) {
    throw new StorageError("EINVAL", `volume ${input.volumeId} has no passphrase: set one before turning auto-unlock off`);
  }
  return remaining;
}

async function passphraseSlot(volumeId: string, dataKey: Buffer, passphrase: string, cost: ScryptCost = {}): Promise<PassphraseSlot> {
  if (typeof passphrase !== "string" || passphrase.length === 0) throw new StorageError("EINVAL", "the passphrase is empty");
  const kdf: ScryptParams = {
    name: "scrypt",
    N: cost.N ?? DEFAULT_SCRYPT.N,
    r: cost.r ?? DEFAULT_SCRYPT.r,
    p: cost.p ?? DEFAULT_SCRYPT.p,
    salt: randomBytes(SALT_BYTES).toString("base64"),
  };
  const checked = scryptParamsSchema.safeParse(kdf);
  if (!checked.success) throw new StorageError("EINVAL", `bad scrypt parameters: ${checked.error.issues.map((issue) => issue.message).join("; ")}`);
  const kek = await deriveKey(passphrase, kdf);
  return { kind: "passphrase", kdf, ...wrap(kek, dataKey, slotAad(volumeId, "passphrase")) };
}

function masterSlot(volumeId: string, dataKey: Buffer, masterKey: Buffer): MasterSlot {
  checkMasterKey(masterKey);
  return { kind: "master", masterKeyId: masterKeyId(masterKey), ...wrap(masterKey, dataKey, slotAad(volumeId, "master")) };
}

function deriveKey(passphrase: string, kdf: ScryptParams): Promise<Buffer> {
  // NFC so the same passphrase typed on different systems derives the same key.
  const secret = Buffer.from(passphrase.normalize("NFC"), "utf8");
  // The slot was parsed (bounded) before this: maxmem only lifts node's 32 MiB default cap.
  const maxmem = scryptMemoryBytes(kdf) + 2 ** 20;
  return new Promise((resolve, reject) => {
    scryptCallback(secret, Buffer.from(kdf.salt, "base64"), DATA_KEY_BYTES, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem }, (error, key) => {
      if (error) reject(new StorageError("EINVAL", "scrypt failed for the slot's parameters", { cause: error }));
      else resolve(key);
    });
  });
}

export function wrap(kek: Buffer, dataKey: Buffer, aad: Buffer): { nonce: string; wrapped: string } {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv("aes-256-gcm", kek, nonce);
  cipher.setAAD(aad);
  const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
  return { nonce: nonce.toString("base64"), wrapped: wrapped.toString("base64") };
}

/** The data key, or undefined when this key does not open the slot. */
export function unwrap(kek: Buffer, slot: { nonce: string; wrapped: string }, aad: Buffer): Buffer | undefined {
  const nonce = Buffer.from(slot.nonce, "base64");
  const wrapped = Buffer.from(slot.wrapped, "base64");
  if (nonce.length !== NONCE_BYTES || wrapped.length !== DATA_KEY_BYTES + TAG_BYTES) return undefined;
  const decipher = createDecipheriv("aes-256-gcm", kek, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(wrapped.subarray(DATA_KEY_BYTES));
  try {
    return Buffer.concat([decipher.update(wrapped.subarray(0, DATA_KEY_BYTES)), decipher.final()]);
  } catch {
    return undefined; // authentication failed: not this key (the reason is the caller's message)
  }
}

function slotAad(volumeId: string, kind: KeySlot["kind"]): Buffer {
  return Buffer.from(`stratus-key-slot-v1\0${volumeId}\0${kind}`, "utf8");
}

function parseSlot(slot: unknown): KeySlot {
  const parsed = keySlotSchema.safeParse(slot);
  if (!parsed.success)
    throw new StorageError("EINVAL", `malformed key slot: ${parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`).join("; ")}`);
  return parsed.data;
}

function checkDataKey(dataKey: Buffer): void {
  if (!Buffer.isBuffer(dataKey) || dataKey.length !== DATA_KEY_BYTES) throw new StorageError("EINVAL", `a data key is ${DATA_KEY_BYTES} bytes`);
}

/** Constant-time equality for two data keys (e.g. to check an unlock against the key in memory). */
export function sameDataKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
