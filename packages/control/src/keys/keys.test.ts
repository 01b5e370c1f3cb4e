import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { hashPassword, verifyPassword } from "./passwords";
import { openUnlockGrant, sealUnlockGrant } from "./unlock-grants";

describe("unlock grants", () => {
  it("open only with the same master key and for the same volume", () => {
    const master = randomBytes(32);
    const dataKey = randomBytes(32);
    const grant = sealUnlockGrant(master, "vol_A", dataKey);
    expect(grant).not.toContain(dataKey.toString("base64"));
    expect(openUnlockGrant(master, "vol_A", grant)).toEqual(dataKey);
    expect(openUnlockGrant(master, "vol_B", grant)).toBeUndefined();
    expect(openUnlockGrant(randomBytes(32), "vol_A", grant)).toBeUndefined();
    const tampered = Buffer.from(grant, "base64");
    tampered[20]! ^= 1;
    expect(openUnlockGrant(master, "vol_A", tampered.toString("base64"))).toBeUndefined();
  });
});

describe("passwords", () => {
  it("verify the right password only, with parameters in the hash string", async () => {
    const hash = await hashPassword("a long password 1", { N: 1024 });
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(hash).not.toContain("a long password 1");
    expect(await verifyPassword("a long password 1", hash)).toBe(true);
    expect(await verifyPassword("a long password 2", hash)).toBe(false);
    expect(await verifyPassword("x", "not a hash")).toBe(false);
  });

  it("hash at N=2^17 by default; older cheaper hashes still verify; a hostile stored cost is refused without deriving", async () => {
    const hash = await hashPassword("a long password 3");
    expect(hash).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect(await verifyPassword("a long password 3", hash)).toBe(true);
    const old = await hashPassword("a long password 4", { N: 2 ** 15 });
    expect(await verifyPassword("a long password 4", old)).toBe(true);
    const [, , , , salt, key] = hash.split("$");
    const started = performance.now();
    for (const cost of ["1073741824$8$1", "1048576$32$1", "131072$8$1000", "1000$8$1", "131072$8$0"]) {
      expect(await verifyPassword("a long password 3", `scrypt$${cost}$${salt}$${key}`)).toBe(false);
    }
    // Refused before deriving: one default-cost derivation alone takes longer than all five.
    expect(performance.now() - started).toBeLessThan(250);
  });
});
