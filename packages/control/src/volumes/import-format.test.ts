import { describe, expect, it } from "vitest";
import { detectImageFormat } from "./import-format";

/** A qcow2 header as qemu-img writes it: magic, version, backing file offset, cluster bits, size, crypt method. */
function qcow2Head(virtualSize: bigint, { version = 3, backing = 0n, crypt = 0 } = {}): Buffer {
  const head = Buffer.alloc(512);
  head.writeUInt32BE(0x514649fb, 0);
  head.writeUInt32BE(version, 4);
  head.writeBigUInt64BE(backing, 8);
  head.writeUInt32BE(16, 20);
  head.writeBigUInt64BE(virtualSize, 24);
  head.writeUInt32BE(crypt, 32);
  return head;
}

describe("detectImageFormat", () => {
  it("reads a qcow2's virtual size from its header, whatever the file's size", () => {
    expect(detectImageFormat(qcow2Head(10n * 2n ** 30n), 200_000)).toEqual({ format: "qcow2", virtualSize: 10 * 2 ** 30 });
  });

  it("takes anything unrecognised for raw, sized by the file", () => {
    expect(detectImageFormat(Buffer.alloc(512, 7), 3 * 2 ** 20)).toEqual({ format: "raw", virtualSize: 3 * 2 ** 20 });
  });

  it("refuses what it cannot import with the reason", () => {
    expect(() => detectImageFormat(qcow2Head(2n ** 30n, { backing: 0x200n }), 1 << 20)).toThrow(/backing file/);
    expect(() => detectImageFormat(qcow2Head(2n ** 30n, { crypt: 1 }), 1 << 20)).toThrow(/encrypted/);
    expect(() => detectImageFormat(qcow2Head(2n ** 30n, { version: 9 }), 1 << 20)).toThrow(/version 9/);
    expect(() => detectImageFormat(Buffer.from("KDMV\x01\x00\x00\x00"), 1 << 20)).toThrow(/vmdk/);
    expect(() => detectImageFormat(Buffer.from([0x1f, 0x8b, 8, 0]), 1 << 20)).toThrow(/gzip/);
    expect(() => detectImageFormat(Buffer.alloc(0), 0)).toThrow(/empty/);
  });
});
