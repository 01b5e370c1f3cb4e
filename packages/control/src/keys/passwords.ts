/**
 * Account passwords: scrypt with a random salt; the hash string carries its parameters
 * (`scrypt$N$r$p$salt$hash`, base64url), so raising the cost later keeps old hashes verifiable.
 * New hashes use the key slots' default cost (N=2^17); a stored cost beyond the key slots' bounds is
 * refused before deriving, as a hostile header would be.
 */
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { DEFAULT_SCRYPT, SCRYPT_LIMITS, scryptMemoryBytes, type ScryptCost } from "@stratus/storage";

const KEY_BYTES = 32;
type Cost = { N: number; r: number; p: number };

function withinLimits({ N, r, p }: Cost): boolean {
  const integers = [N, r, p].every((value) => Number.isSafeInteger(value) && value >= 1);
  return (
    integers &&
    N >= 2 &&
    (N & (N - 1)) === 0 &&
    N <= SCRYPT_LIMITS.maxN &&
    r <= SCRYPT_LIMITS.maxR &&
    p <= SCRYPT_LIMITS.maxP &&
    scryptMemoryBytes({ N, r }) <= SCRYPT_LIMITS.maxMemoryBytes
  );
}

function derive(password: string, salt: Buffer, cost: Cost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: node's default cap (32 MiB) is below the default cost's 128 MiB.
    scrypt(password.normalize("NFKC"), salt, KEY_BYTES, { ...cost, maxmem: scryptMemoryBytes(cost) + 2 ** 20 }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

export async function hashPassword(password: string, cost: ScryptCost = {}): Promise<string> {
  const full = { N: cost.N ?? DEFAULT_SCRYPT.N, r: cost.r ?? DEFAULT_SCRYPT.r, p: cost.p ?? DEFAULT_SCRYPT.p };
  if (!withinLimits(full)) throw new Error("scrypt cost out of bounds");
  const salt = randomBytes(16);
  const key = await derive(password, salt, full);
  return ["scrypt", full.N, full.r, full.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split("$");
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  if (kind !== "scrypt" || !salt || !hash || !withinLimits(cost)) return false;
  const expected = Buffer.from(hash, "base64url");
  const key = await derive(password, Buffer.from(salt, "base64url"), cost);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash of nothing at the deployment's cost, verified against when the email is unknown so both paths cost the same time. */
export function dummyPasswordHash(cost: ScryptCost = {}): string {
  return `scrypt$${cost.N ?? DEFAULT_SCRYPT.N}$${cost.r ?? DEFAULT_SCRYPT.r}$${cost.p ?? DEFAULT_SCRYPT.p}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;
}
