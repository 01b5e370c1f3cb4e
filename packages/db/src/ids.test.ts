import { describe, expect, it } from "vitest";
import { ID_PREFIXES, ID_RANDOM_LENGTH, isId, newId } from "./ids";

describe("newId", () => {
  it("prefixes each kind from the one table", () => {
    expect(newId("volume")).toMatch(/^vol_[1-9A-HJ-NP-Za-km-z]{20}$/);
    expect(newId("user")).toMatch(/^usr_/);
    expect(newId("token")).toMatch(/^tok_/);
    for (const kind of Object.keys(ID_PREFIXES) as (keyof typeof ID_PREFIXES)[]) {
      const id = newId(kind);
      expect(id.startsWith(`${ID_PREFIXES[kind]}_`)).toBe(true);
      expect(id).toHaveLength(ID_PREFIXES[kind].length + 1 + ID_RANDOM_LENGTH);
      expect(isId(kind, id)).toBe(true);
    }
  });

  it("gives every kind its own prefix", () => {
    const prefixes = Object.values(ID_PREFIXES);
    expect(new Set(prefixes).size).toBe(prefixes.length);
  });

  it("does not repeat and uses the whole alphabet", () => {
    const ids = Array.from({ length: 5000 }, () => newId("volume"));
    expect(new Set(ids).size).toBe(ids.length);
    const used = new Set(ids.flatMap((id) => [...id.slice(4)]));
    expect(used.size).toBe(58);
  });

  it("tells ids of another kind or shape apart", () => {
    const id = newId("volume");
    expect(isId("user", id)).toBe(false);
    expect(isId("volume", id.slice(0, -1))).toBe(false);
    expect(isId("volume", `${id.slice(0, -1)}0`)).toBe(false); // 0 is not base58
  });
});
