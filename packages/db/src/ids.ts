import { randomBytes } from "node:crypto";

/**
 * Prefixed, random ids (`vol_3xK9…`): the prefix tells a reader what an id names in logs, URLs and
 * support tickets, and a wrong kind of id fails loudly instead of matching nothing. Every prefix lives
 * in this one table so two entities can never share one.
 */
export const ID_PREFIXES = {
  user: "usr",
  volume: "vol",
  snapshot: "snp",
  token: "tok",
  session: "ses",
  lease: "lse",
  device: "dev",
  invitation: "inv",
  orphanSet: "orp",
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

/** Bitcoin's base58: no 0/O/I/l, so ids survive being read aloud or copied by hand. */
const BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/** 20 base58 characters ≈ 117 bits of randomness: collisions are not a practical concern. */
export const ID_RANDOM_LENGTH = 20;

export function newId(kind: IdKind): string {
  return `${ID_PREFIXES[kind]}_${randomBase58(ID_RANDOM_LENGTH)}`;
}

/** True when `id` is shaped like an id of `kind` (right prefix, right length, base58 body). */
export function isId(kind: IdKind, id: string): boolean {
  const prefix = `${ID_PREFIXES[kind]}_`;
  if (!id.startsWith(prefix) || id.length !== prefix.length + ID_RANDOM_LENGTH) return false;
  for (let i = prefix.length; i < id.length; i++) {
    if (!BASE58_ALPHABET.includes(id[i]!)) return false;
  }
  return true;
}

function randomBase58(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // Rejection sampling: 232 = 4 * 58, so accepting only bytes below it keeps every character
      // equally likely (a plain `byte % 58` would favour the first 24 characters).
      if (byte >= 232) continue;
      out += BASE58_ALPHABET[byte % 58];
      if (out.length === length) break;
    }
  }
  return out;
}
