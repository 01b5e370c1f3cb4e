/**
 * What an imported image is, from its first bytes: qcow2 (magic "QFI\xfb"; the virtual size is in its
 * header) or raw (anything else not recognised below; its size is the file's). Formats the worker
 * cannot stream or convert are named and refused before a volume is made for them.
 */
export const IMAGE_HEAD_BYTES = 512;

export type ImageFormat = { format: "raw"; virtualSize: number } | { format: "qcow2"; virtualSize: number };

export class ImageFormatError extends Error {
  override readonly name = "ImageFormatError";
}

const QCOW2_MAGIC = 0x514649fb;

/** Other containers, so a vmdk is not taken for a raw disk. */
const REFUSED: Array<{ name: string; test: (head: Buffer) => boolean }> = [
  { name: "vmdk", test: (h) => h.subarray(0, 4).toString("latin1") === "KDMV" || h.subarray(0, 21).toString("latin1") === "# Disk DescriptorFile" },
  { name: "vhdx", test: (h) => h.subarray(0, 8).toString("latin1") === "vhdxfile" },
  { name: "vhd", test: (h) => h.subarray(0, 8).toString("latin1") === "conectix" },
  { name: "vdi", test: (h) => h.length >= 68 && h.readUInt32LE(64) === 0xbeda107f },
  { name: "gzip-compressed", test: (h) => h[0] === 0x1f && h[1] === 0x8b },
  { name: "xz-compressed", test: (h) => h.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) },
];

export function detectImageFormat(head: Buffer, totalBytes: number): ImageFormat {
  if (head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC) {
    if (head.length < 40) throw new ImageFormatError("the qcow2 header is cut short");
    const version = head.readUInt32BE(4);
    if (version !== 2 && version !== 3) throw new ImageFormatError(`qcow2 version ${version} is not supported`);
    if (head.readBigUInt64BE(8) !== 0n) throw new ImageFormatError("the qcow2 image has a backing file: import a flattened image (qemu-img convert)");
    if (head.readUInt32BE(32) !== 0) throw new ImageFormatError("the qcow2 image is encrypted");
    const virtualSize = Number(head.readBigUInt64BE(24));
    if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0) throw new ImageFormatError("the qcow2 header gives no usable virtual size");
    return { format: "qcow2", virtualSize };
  }
  const refused = REFUSED.find((candidate) => candidate.test(head));
  if (refused) throw new ImageFormatError(`the image is ${refused.name}: only raw and qcow2 import from a URL (convert it with qemu-img first)`);
  if (totalBytes <= 0) throw new ImageFormatError("the image is empty");
  return { format: "raw", virtualSize: totalBytes };
}
