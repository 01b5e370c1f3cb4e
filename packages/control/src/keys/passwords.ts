/**
 * Account passwords: scrypt with a random salt; the hash string carries its parameters
 * (`scrypt$N$r$p$salt$hash`, base64url), so raising the cost later keeps old hashes verifiable.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import type { ScryptCost } from "@stratus/storage";

const DEFAULT_COST = { N: 2 ** 15, r: 8, p: 1 };
const KEY_BYTES = 32;

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: scrypt needs 128 * N * r bytes; node's default cap (32 MiB) is just below N=2^15, r=8.
    scrypt(password.normalize("NFKC"), salt, KEY_BYTES, { ...cost, maxmem: 256 * cost.N * cost.r + 2 ** 20 }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

export async function hashPassword(password: string, cost: Partial<ScryptCost> = {}): Promise<string> {
  const full = { N: cost.N ?? DEFAULT_COST.N, r: cost.r ?? DEFAULT_COST.r, p: cost.p ?? DEFAULT_COST.p };
  const salt = randomBytes(16);
  const key = await derive(password, salt, full);
  return ["scrypt", full.N, full.r, full.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split("$");
  if (kind !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64url");
  const key = await derive(password, Buffer.from(salt, "base64url"), { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash of nothing, verified against when the email is unknown so both paths cost the same time. */
export const DUMMY_PASSWORD_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
