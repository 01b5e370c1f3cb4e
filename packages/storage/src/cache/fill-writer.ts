/**
 * Writing a fetched chunk into its cache file through libuv's thread pool: allocating a fresh
 * file's pages is time the event loop should spend serving.
 */
import { open, read, write } from "node:fs";
import { promisify } from "node:util";

/** Writes all of `data` at offset 0 of the open file `fd`; rejects with the fs error (ENOSPC...). */
export type FillWriter = (fd: number, data: Buffer) => Promise<void>;

export const openFile: (file: string, flags: string | number) => Promise<number> = promisify(open);
const writeAt = promisify(write);
/** fs.read in the thread pool. */
export const readAt = promisify(read);

export const writeFileFully: FillWriter = async (fd, data) => {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await writeAt(fd, data, done, data.length - done, done);
    done += bytesWritten;
  }
};
