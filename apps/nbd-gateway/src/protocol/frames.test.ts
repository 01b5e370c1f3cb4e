import { describe, expect, it } from "vitest";
import {
  NBD_CMD_WRITE,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_NAME,
  NBD_OPT_GO,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REP_ERR_UNSUP,
  NBD_REP_META_CONTEXT,
  NBD_REQUEST_SIZE,
} from "./constants";
import { FrameReader } from "./frame-reader";
import {
  ProtocolError,
  decodeGreeting,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeOptionReply,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  encodeOptionError,
  encodeRepMetaContext,
  encodeRepServerData,
  truncateUtf8,
} from "./handshake-frames";
import {
  OFFSET_DATA_HEADER_SIZE,
  decodeRequestHeader,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeRequest,
  readUInt64,
  writeOffsetDataHeader,
  writeOffsetHoleChunk,
  writeSimpleReplyHeader,
  writeUInt64,
} from "./transmission-frames";

describe("handshake frames", () => {
  it("encodes the greeting with NBDMAGIC, IHAVEOPT and the handshake flags", () => {
    const g = encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    expect(g.toString("hex")).toBe("4e42444d41474943" + "49484156454f5054" + "0003");
    expect(decodeGreeting(g).handshakeFlags).toBe(3);
  });

  it("round-trips option headers and rejects a bad option magic as fatal", () => {
    const opt = encodeOption(NBD_OPT_GO, Buffer.from("abc"));
    expect(decodeOptionHeader(opt)).toEqual({ option: NBD_OPT_GO, length: 3 });
    opt[0] = 0;
    expect(() => decodeOptionHeader(opt)).toThrow(ProtocolError);
    try {
      decodeOptionHeader(opt);
    } catch (e) {
      expect((e as ProtocolError).fatal).toBe(true);
    }
  });

  it("encodes option replies with the reply magic, option, type and message", () => {
    const reply = decodeOptionReply(encodeOptionError(99, NBD_REP_ERR_UNSUP, "nope"));
    expect(reply).toMatchObject({ option: 99, replyType: NBD_REP_ERR_UNSUP });
    expect(reply.data.toString()).toBe("nope");
    expect(encodeOptionError(1, NBD_REP_ERR_UNSUP, "").subarray(0, 8).toString("hex")).toBe("0003e889045565a9");
  });

  it("round-trips INFO/GO requests and rejects inconsistent lengths", () => {
    const data = encodeInfoRequest("disk", [NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE]);
    expect(decodeInfoRequest(data)).toEqual({ name: "disk", requests: [NBD_INFO_NAME, NBD_INFO_BLOCK_SIZE] });
    expect(() => decodeInfoRequest(data.subarray(0, data.length - 1))).toThrow(ProtocolError);
    expect(() => decodeInfoRequest(Buffer.from([0, 0, 0, 9, 0, 0]))).toThrow(/exceeds/);
    expect(() => decodeInfoRequest(encodeInfoRequest("a\0b", []))).toThrow(/NUL/);
    expect(() => decodeInfoRequest(Buffer.alloc(3))).toThrow(ProtocolError);
  });

  it("encodes the NBD_REP_INFO payloads with the spec's lengths", () => {
    const exp = encodeInfoExport(2 ** 40 + 5, 0x1234);
    expect(exp.length).toBe(12);
    expect(exp.readUInt16BE(0)).toBe(0);
    expect(exp.readBigUInt64BE(2)).toBe(2n ** 40n + 5n);
    expect(exp.readUInt16BE(10)).toBe(0x1234);
    const bs = encodeInfoBlockSize({ minimum: 1, preferred: 4096, maximum: 32 << 20 });
    expect(bs.length).toBe(14);
    expect([bs.readUInt16BE(0), bs.readUInt32BE(2), bs.readUInt32BE(6), bs.readUInt32BE(10)]).toEqual([3, 1, 4096, 32 << 20]);
  });

  it("encodes NBD_REP_SERVER data as name length, name, description", () => {
    const d = encodeRepServerData("vol", "my disk");
    expect(d.readUInt32BE(0)).toBe(3);
    expect(d.subarray(4, 7).toString()).toBe("vol");
    expect(d.subarray(7).toString()).toBe("my disk");
  });

  it("encodes the EXPORT_NAME reply with or without the 124 zero bytes", () => {
    expect(encodeExportNameReply(1024, 1, true).length).toBe(10);
    expect(encodeExportNameReply(1024, 1, false).length).toBe(134);
  });

  it("round-trips meta context requests and rejects lengths beyond the option", () => {
    const data = encodeMetaContextRequest("disk", ["base:allocation", "qemu:dirty-bitmap:x"]);
    expect(decodeMetaContextRequest(data)).toEqual({ exportName: "disk", queries: ["base:allocation", "qemu:dirty-bitmap:x"] });
    expect(() => decodeMetaContextRequest(data.subarray(0, data.length - 2))).toThrow(ProtocolError);
    const reply = decodeOptionReply(encodeRepMetaContext(10, 1, "base:allocation"));
    expect(reply.replyType).toBe(NBD_REP_META_CONTEXT);
    expect(reply.data.readUInt32BE(0)).toBe(1);
  });

  it("truncates UTF-8 at a character boundary", () => {
    expect(truncateUtf8("ééé", 5).toString()).toBe("éé");
  });
});

describe("transmission frames", () => {
  it("round-trips a request header with 64-bit handle and offset as plain numbers", () => {
    const buf = encodeRequest(NBD_CMD_WRITE, 1, 0xdead_beef_cafe, 2 ** 45 + 7, 4096);
    const req = decodeRequestHeader(buf, 0);
    expect(req).toEqual({ flags: 1, type: NBD_CMD_WRITE, handleHi: 0xdead, handleLo: 0xbeef_cafe, offset: 2 ** 45 + 7, length: 4096 });
    buf[0] = buf[0]! ^ 1;
    expect(() => decodeRequestHeader(buf, 0)).toThrow(/magic/);
  });

  it("writes simple reply headers and OFFSET_DATA / OFFSET_HOLE chunks in place", () => {
    const buf = Buffer.alloc(16);
    writeSimpleReplyHeader(buf, 0, 22, 1, 2);
    expect(buf.toString("hex")).toBe("67446698" + "00000016" + "00000001" + "00000002");

    const data = Buffer.alloc(OFFSET_DATA_HEADER_SIZE + 3);
    expect(writeOffsetDataHeader(data, 0, NBD_REPLY_FLAG_DONE, 0, 9, 2 ** 33, 3)).toBe(28);
    expect(data.readUInt32BE(0)).toBe(0x668e33ef);
    expect(data.readUInt16BE(4)).toBe(NBD_REPLY_FLAG_DONE);
    expect(data.readUInt16BE(6)).toBe(NBD_REPLY_TYPE_OFFSET_DATA);
    expect(data.readUInt32BE(16)).toBe(11);
    expect(readUInt64(data, 20)).toBe(2 ** 33);

    const hole = Buffer.alloc(32);
    writeOffsetHoleChunk(hole, 0, 0, 0, 9, 512, 4096);
    expect(hole.readUInt16BE(6)).toBe(NBD_REPLY_TYPE_OFFSET_HOLE);
    expect(hole.readUInt32BE(16)).toBe(12);
    expect(readUInt64(hole, 20)).toBe(512);
    expect(hole.readUInt32BE(28)).toBe(4096);
  });

  it("encodes BLOCK_STATUS and ERROR chunks", () => {
    const bs = encodeBlockStatusChunk(1, 0, 7, 1, [
      { length: 4096, flags: 3 },
      { length: 512, flags: 0 },
    ]);
    expect(bs.readUInt16BE(6)).toBe(NBD_REPLY_TYPE_BLOCK_STATUS);
    expect(bs.readUInt32BE(16)).toBe(4 + 16);
    expect([bs.readUInt32BE(20), bs.readUInt32BE(24), bs.readUInt32BE(28), bs.readUInt32BE(32)]).toEqual([1, 4096, 3, 512]);
    const err = encodeErrorChunk(1, 0, 7, 22, "bad");
    expect(err.readUInt16BE(6)).toBe(NBD_REPLY_TYPE_ERROR);
    expect(err.readUInt32BE(16)).toBe(9);
    expect(err.readUInt32BE(20)).toBe(22);
    expect(err.readUInt16BE(24)).toBe(3);
  });

  it("writes 64-bit numbers without BigInt", () => {
    const b = Buffer.alloc(8);
    writeUInt64(b, 0, Number.MAX_SAFE_INTEGER);
    expect(b.readBigUInt64BE(0)).toBe(BigInt(Number.MAX_SAFE_INTEGER));
  });
});

describe("FrameReader", () => {
  it("returns views for frames inside one chunk and copies only frames that straddle chunks", () => {
    const reader = new FrameReader();
    const a = Buffer.from([1, 2, 3, 4, 5]);
    const b = Buffer.from([6, 7, 8]);
    reader.push(a);
    reader.push(b);
    const first = reader.take(2);
    expect(first.buffer).toBe(a.buffer); // a view, no copy
    const straddling = reader.take(4);
    expect([...straddling]).toEqual([3, 4, 5, 6]);
    expect(reader.available).toBe(2);
    expect(reader.peekUInt8(1)).toBe(8);
    expect(reader.skip(10)).toBe(2);
    expect(reader.available).toBe(0);
  });

  it("reassembles request headers split at every possible byte boundary", () => {
    const req = encodeRequest(0, 0, 42, 4096, 512);
    for (let cut = 1; cut < NBD_REQUEST_SIZE; cut++) {
      const reader = new FrameReader();
      reader.push(req.subarray(0, cut));
      reader.push(req.subarray(cut));
      expect(decodeRequestHeader(reader.take(NBD_REQUEST_SIZE), 0).handleLo).toBe(42);
    }
  });

  it("copies a payload spread over many small chunks", () => {
    const reader = new FrameReader();
    const payload = Buffer.alloc(1000, 0).map((_, i) => i & 0xff);
    for (let i = 0; i < payload.length; i += 7) reader.push(Buffer.from(payload.subarray(i, i + 7)));
    const target = Buffer.alloc(1000);
    reader.copyInto(target, 0, 1000);
    expect(target.equals(Buffer.from(payload))).toBe(true);
  });

  it("never hands out a transient chunk past the read: take copies it, keepRemainder keeps the rest", () => {
    const reader = new FrameReader();
    const readBuffer = Buffer.from([1, 2, 3, 4, 5, 6]);
    reader.pushTransient(readBuffer);
    const taken = reader.take(2);
    expect(reader.view(1)?.buffer).toBe(readBuffer.buffer); // for synchronous use only
    reader.keepRemainder();
    readBuffer.fill(0); // the socket reuses its buffer for the next read
    reader.pushTransient(readBuffer.subarray(0, 2));
    expect([...taken]).toEqual([1, 2]);
    expect([...reader.take(5)]).toEqual([4, 5, 6, 0, 0]);
    reader.keepRemainder();
    expect(reader.available).toBe(0);
  });

  it("keeps only the unconsumed tail of a transient chunk behind kept ones", () => {
    const reader = new FrameReader();
    reader.push(Buffer.from([9]));
    const readBuffer = Buffer.from([1, 2, 3]);
    reader.pushTransient(readBuffer);
    reader.keepRemainder();
    readBuffer.fill(7);
    expect([...reader.take(4)]).toEqual([9, 1, 2, 3]);
  });
});
