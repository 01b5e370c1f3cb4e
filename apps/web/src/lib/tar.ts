/**
 * A minimal POSIX ustar writer for the browser: a device's credential folder as one download that
 * `tar -xf` unpacks with its modes (keys 0600, folder 0700). Only what that needs: a directory entry
 * and small regular files with ASCII names under 100 bytes.
 */
export interface TarEntry {
  /** Relative path; a trailing "/" makes a directory. */
  name: string;
  content?: string;
  mode: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width-1 octal digits and a NUL, as ustar's numeric fields are written.
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function header(name: string, size: number, mode: number, type: "0" | "5", mtime: number): Uint8Array {
  if (!/^[\x20-\x7e]+$/.test(name) || name.length >= 100) throw new Error(`tar: unsupported name ${JSON.stringify(name)}`);
  const block = new Uint8Array(BLOCK);
  const put = (offset: number, text: string) => block.set(new TextEncoder().encode(text), offset);
  put(0, name);
  put(100, octal(mode, 8));
  put(108, octal(0, 8)); // uid
  put(116, octal(0, 8)); // gid
  put(124, octal(size, 12));
  put(136, octal(mtime, 12));
  put(148, "        "); // checksum counts as spaces while it is computed
  put(156, type);
  put(257, "ustar\0");
  put(263, "00");
  const sum = block.reduce((total, byte) => total + byte, 0);
  put(148, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

/** The archive's bytes. `mtime` in seconds since the epoch. */
export function makeTar(entries: readonly TarEntry[], mtime = Math.floor(Date.now() / 1000)): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    if (entry.name.endsWith("/")) {
      parts.push(header(entry.name, 0, entry.mode, "5", mtime));
      continue;
    }
    const data = new TextEncoder().encode(entry.content ?? "");
    parts.push(header(entry.name, data.length, entry.mode, "0", mtime));
    const padded = new Uint8Array(Math.ceil(data.length / BLOCK) * BLOCK);
    padded.set(data);
    parts.push(padded);
  }
  parts.push(new Uint8Array(2 * BLOCK)); // end of archive
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
