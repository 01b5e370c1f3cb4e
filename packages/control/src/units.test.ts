import { describe, expect, it } from "vitest";
import { formatSize, parseSize } from "./units";

describe("parseSize", () => {
  it("reads binary units as qemu-img and truncate do", () => {
    expect(parseSize("4096")).toBe(4096);
    expect(parseSize("64K")).toBe(65536);
    expect(parseSize("1M")).toBe(2 ** 20);
    expect(parseSize("10G")).toBe(10 * 2 ** 30);
    expect(parseSize("2t")).toBe(2 * 2 ** 40);
    expect(parseSize("1.5G")).toBe(1.5 * 2 ** 30);
    expect(parseSize("512MiB")).toBe(512 * 2 ** 20);
  });

  it("rejects what is not a size, saying how to write one", () => {
    expect(() => parseSize("ten gigs")).toThrow(/not a size.*10G/);
    expect(() => parseSize("-1G")).toThrow(/not a size/);
    expect(() => parseSize("1.3")).toThrow(/whole number/);
    expect(() => parseSize("")).toThrow(/not a size/);
  });
});

describe("formatSize", () => {
  it("prints the largest whole unit", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(2 ** 20)).toBe("1 MiB");
    expect(formatSize(10 * 2 ** 30)).toBe("10 GiB");
    expect(formatSize(1.5 * 2 ** 30)).toBe("1.50 GiB");
  });
});
