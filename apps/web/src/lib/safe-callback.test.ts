import { describe, expect, it } from "vitest";
import { safeCallbackPath, safeRedirectUrl } from "./safe-callback";

const LEAVING = [
  "/\\evil.com",
  "/\\/evil.com",
  "/\t/evil.com",
  "/\\t/evil.com",
  "/\n/evil.com",
  "/\r\n/evil.com",
  "//evil.com",
  "///evil.com",
  "https://evil.com",
  "http:/evil.com",
  "javascript:alert(1)",
  "\\\\evil.com",
  " //evil.com",
  "evil.com",
  "/%5Cevil.com\\",
  "",
];

describe("safeCallbackPath", () => {
  it("keeps paths on this site", () => {
    expect(safeCallbackPath("/volumes/db1?tab=keys#x")).toBe("/volumes/db1?tab=keys#x");
    expect(safeCallbackPath("/tokens")).toBe("/tokens");
    // Percent-encoded slashes stay a path segment on this site.
    expect(safeCallbackPath("/%2F%2Fevil.com")).toBe("/%2F%2Fevil.com");
    expect(safeCallbackPath("/a/../b")).toBe("/b");
  });

  it("sends every way off the site to the default", () => {
    for (const attempt of LEAVING) expect([attempt, safeCallbackPath(attempt)]).toEqual([attempt, "/volumes"]);
    expect(safeCallbackPath(undefined)).toBe("/volumes");
    expect(safeCallbackPath(["/volumes"])).toBe("/volumes");
  });
});

describe("safeRedirectUrl (next-auth)", () => {
  const base = "https://stratus.example";
  it("keeps same-origin URLs and paths, and nothing else", () => {
    expect(safeRedirectUrl("https://stratus.example/volumes", base)).toBe("https://stratus.example/volumes");
    expect(safeRedirectUrl("/tokens", base)).toBe("https://stratus.example/tokens");
    for (const attempt of [...LEAVING, "https://stratus.example.evil.com/x", "https://evil.com/https://stratus.example"]) {
      expect(new URL(safeRedirectUrl(attempt, base)).origin).toBe(base);
    }
  });
});
