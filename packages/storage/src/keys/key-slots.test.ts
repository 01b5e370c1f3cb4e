import * as crypto from "node:crypto";
import { inspect } from "node:util";
import { describe, expect, it, vi } from "vitest";
import { StorageError } from "../errors";
import { decodeVolumeHeader } from "../format/volume-header";
import { SCRYPT_LIMITS } from "./key-slot";
import { addMasterSlot, changePassphrase, createKeySlots, removeMasterSlots, unlockDataKey } from "./key-slots";
import { formatMasterKey, generateMasterKey, masterKeyId, parseMasterKey } from "./master-key";

// Counts scrypt derivations, to show a hostile slot is refused before one starts (and allocates).
vi.mock("node:crypto", async (importOriginal) => {
  const original = await importOriginal<typeof import("node:crypto")>();
  return { ...original, scrypt: vi.fn(original.scrypt) };
});
const { randomBytes } = crypto;

// Cheap scrypt for tests; the default cost is covered once below.
const kdf = { N: 2 ** 10 };
const volumeId = "vol_keys";

async function rejection(promise: Promise<unknown>): Promise<StorageError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StorageError);
  return error as StorageError;
}

describe("key slots", () => {
  it("unlocks with the passphrase and with the master key", async () => {
    const masterKey = generateMasterKey();
    const { dataKey, slots } = await createKeySlots({ volumeId, passphrase: "correct horse", masterKey, kdf });
    expect(dataKey.length).toBe(32);
    expect(slots.map((slot) => slot.kind)).toEqual(["passphrase", "master"]);
    expect((await unlockDataKey({ volumeId, slots, passphrase: "correct horse" })).equals(dataKey)).toBe(true);
    expect((await unlockDataKey({ volumeId, slots, masterKey })).equals(dataKey)).toBe(true);
    const stored = JSON.parse(JSON.stringify(slots));
    expect((await unlockDataKey({ volumeId, slots: stored, passphrase: "correct horse" })).equals(dataKey)).toBe(true);
  });

  it("with no passphrase, the master slot is the only slot", async () => {
    const masterKey = generateMasterKey();
    const { slots } = await createKeySlots({ volumeId, masterKey });
    expect(slots).toEqual([{ kind: "master", masterKeyId: masterKeyId(masterKey), nonce: expect.any(String), wrapped: expect.any(String) }]);
    const error = await rejection(unlockDataKey({ volumeId, slots, passphrase: "anything" }));
    expect([error.code, error.message]).toEqual(["EPERM", "wrong passphrase"]);
  });

  it("refuses a wrong passphrase, a wrong master key and a slot from another volume with EPERM", async () => {
    const masterKey = generateMasterKey();
    const { slots } = await createKeySlots({ volumeId, passphrase: "secret one", masterKey, kdf });
    const wrong = await rejection(unlockDataKey({ volumeId, slots, passphrase: "secret two" }));
    expect([wrong.code, wrong.message]).toEqual(["EPERM", "wrong passphrase"]);
    const other = generateMasterKey();
    const wrongMaster = await rejection(unlockDataKey({ volumeId, slots, masterKey: other }));
    expect(wrongMaster.code).toBe("EPERM");
    expect(wrongMaster.message).toMatch(/^wrong master key/);
    expect(wrongMaster.message).not.toContain(formatMasterKey(other));
    expect((await rejection(unlockDataKey({ volumeId: "vol_other", slots, passphrase: "secret one" }))).code).toBe("EPERM");
    expect((await rejection(unlockDataKey({ volumeId: "vol_other", slots, masterKey }))).code).toBe("EPERM");
    // A master slot relabelled with the right id still does not open for another key.
    const forged = slots.map((slot) => (slot.kind === "master" ? { ...slot, masterKeyId: masterKeyId(other) } : slot));
    expect((await rejection(unlockDataKey({ volumeId, slots: forged, masterKey: other }))).code).toBe("EPERM");
    expect((await rejection(unlockDataKey({ volumeId, slots }))).message).toMatch(/locked/);
  });

  it("changes the passphrase: same data key, old passphrase stops working, master slot kept", async () => {
    const masterKey = generateMasterKey();
    const { dataKey, slots } = await createKeySlots({ volumeId, passphrase: "old pass", masterKey, kdf });
    const changed = await changePassphrase({ volumeId, slots, oldPassphrase: "old pass", newPassphrase: "new pass", kdf });
    expect(changed.map((slot) => slot.kind)).toEqual(["passphrase", "master"]);
    expect(changed[1]).toEqual(slots[1]);
    expect((await unlockDataKey({ volumeId, slots: changed, passphrase: "new pass" })).equals(dataKey)).toBe(true);
    const old = await rejection(unlockDataKey({ volumeId, slots: changed, passphrase: "old pass" }));
    expect([old.code, old.message]).toEqual(["EPERM", "wrong passphrase"]);
    const refused = await rejection(changePassphrase({ volumeId, slots, oldPassphrase: "nope", newPassphrase: "x", kdf }));
    expect([refused.code, refused.message]).toEqual(["EPERM", "wrong passphrase"]);
  });

  it("adds a passphrase to an auto-unlock volume from its unlocked data key; master slots come and go", async () => {
    const masterKey = generateMasterKey();
    const { dataKey, slots } = await createKeySlots({ volumeId, masterKey });
    expect(() => removeMasterSlots({ volumeId, slots })).toThrow(/no passphrase/);
    const withPassphrase = await changePassphrase({ volumeId, slots, dataKey, newPassphrase: "added", kdf });
    const locked = removeMasterSlots({ volumeId, slots: withPassphrase });
    expect(locked.map((slot) => slot.kind)).toEqual(["passphrase"]);
    expect((await rejection(unlockDataKey({ volumeId, slots: locked, masterKey }))).code).toBe("EPERM");
    const again = addMasterSlot({ volumeId, slots: locked, dataKey, masterKey });
    expect((await unlockDataKey({ volumeId, slots: again, masterKey })).equals(dataKey)).toBe(true);
    expect(addMasterSlot({ volumeId, slots: again, dataKey, masterKey }).filter((slot) => slot.kind === "master")).toHaveLength(1);
  });

  it("stores scrypt parameters (default N=2^17, r=8, p=1); slots made at the old default still open", async () => {
    const { dataKey, slots } = await createKeySlots({ volumeId, passphrase: "default cost" });
    expect(slots[0]).toMatchObject({ kind: "passphrase", kdf: { name: "scrypt", N: 2 ** 17, r: 8, p: 1 } });
    expect((await unlockDataKey({ volumeId, slots, passphrase: "default cost" })).equals(dataKey)).toBe(true);
    const old = await createKeySlots({ volumeId, passphrase: "old default", kdf: { N: 2 ** 15 } });
    expect(old.slots[0]).toMatchObject({ kdf: { N: 2 ** 15 } });
    expect((await unlockDataKey({ volumeId, slots: old.slots, passphrase: "old default" })).equals(old.dataKey)).toBe(true);
  });

  it("refuses hostile scrypt parameters from a slot or a bucket header before deriving anything", async () => {
    const { slots } = await createKeySlots({ volumeId, passphrase: "hostile", kdf });
    const slot = slots[0] as Extract<(typeof slots)[number], { kind: "passphrase" }>;
    const hostile = [
      { N: 2 ** 30, r: 8, p: 1 }, // 1 TiB
      { N: 2 ** 20, r: 32, p: 1 }, // 4 GiB, each field within its own bound
      { N: 2 ** 18, r: 16, p: 1 }, // 512 MiB
      { N: 2 ** 10, r: 8, p: 1000 },
      { N: 1000, r: 8, p: 1 },
    ];
    const scrypt = vi.mocked(crypto.scrypt);
    scrypt.mockClear();
    for (const cost of hostile) {
      const forged = [{ ...slot, kdf: { ...slot.kdf, ...cost } }];
      const refused = await rejection(unlockDataKey({ volumeId, slots: forged, passphrase: "hostile" }));
      expect(refused.code).toBe("EINVAL");
      const header = {
        format: 1,
        volumeId,
        name: "v",
        sizeBytes: 2 ** 20,
        chunkSize: 2 ** 20,
        compression: "zstd",
        durability: "local",
        createdAt: "2026-01-01T00:00:00Z",
        slots: forged,
      };
      expect(() => decodeVolumeHeader(Buffer.from(JSON.stringify(header)))).toThrow(/invalid/);
    }
    expect(scrypt).not.toHaveBeenCalled();
    // The bound still admits twice the default cost's memory.
    expect(128 * 2 ** 18 * 8).toBeLessThanOrEqual(SCRYPT_LIMITS.maxMemoryBytes);
    expect((await rejection(createKeySlots({ volumeId, passphrase: "x", kdf: { N: 2 ** 20, r: 32 } }))).code).toBe("EINVAL");
    expect(scrypt).not.toHaveBeenCalled();
    // The counter does see a derivation: the genuine slot still opens.
    await unlockDataKey({ volumeId, slots, passphrase: "hostile" });
    expect(scrypt).toHaveBeenCalledTimes(1);
    expect((await rejection(createKeySlots({ volumeId, passphrase: "x", kdf: { N: 1000 } }))).code).toBe("EINVAL");
    expect((await rejection(createKeySlots({ volumeId, passphrase: "" }))).code).toBe("EINVAL");
    expect((await rejection(createKeySlots({ volumeId }))).code).toBe("EINVAL");
  });

  it("never shows a passphrase or key in slots or errors", async () => {
    const masterKey = generateMasterKey();
    const passphrase = "a-very-recognisable-passphrase";
    const { dataKey, slots } = await createKeySlots({ volumeId, passphrase, masterKey, kdf });
    const wrong = await rejection(unlockDataKey({ volumeId, slots, passphrase: passphrase + "!" }));
    const shown = [JSON.stringify(slots), inspect(wrong, { showHidden: true, depth: 10 }), JSON.stringify(wrong), String(wrong.stack)];
    for (const text of shown) {
      for (const secret of [passphrase, dataKey.toString("hex"), dataKey.toString("base64"), masterKey.toString("base64"), masterKey.toString("hex")]) {
        expect(text).not.toContain(secret);
      }
    }
  });
});

describe("master key", () => {
  it("parses base64 of 32 bytes and names it by a short id", () => {
    const key = randomBytes(32);
    expect(parseMasterKey(` ${key.toString("base64")}\n`).equals(key)).toBe(true);
    expect(masterKeyId(key)).toMatch(/^[0-9a-f]{16}$/);
    expect(masterKeyId(key)).toBe(masterKeyId(Buffer.from(key)));
    expect(parseMasterKey(formatMasterKey(key)).equals(key)).toBe(true);
  });

  it("refuses anything else with a clear message that does not echo the value", () => {
    for (const text of [
      "",
      "short",
      randomBytes(16).toString("base64"),
      randomBytes(33).toString("base64"),
      randomBytes(32).toString("hex"),
      "!!!!" + randomBytes(30).toString("base64"),
    ]) {
      let error: unknown;
      try {
        parseMasterKey(text);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(StorageError);
      expect((error as StorageError).code).toBe("EINVAL");
      expect((error as StorageError).message).toMatch(/STRATUS_MASTER_KEY must be the base64 encoding of exactly 32 bytes/);
      if (text.length > 0) expect((error as StorageError).message).not.toContain(text);
    }
  });
});
