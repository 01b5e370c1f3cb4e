/**
 * Thread-pool calls on descriptors the cache already holds: fdatasync in one call (a FLUSH used to
 * open, sync and close each file: three hops) and large writes (cache-writes.ts). While such a call
 * runs, the descriptor is pinned: a close asked for meanwhile waits for the last call to end,
 * because a closed number can be handed to another file at once, and the pending call would then
 * sync or write that file instead.
 */
import { closeSync, fdatasync, write } from "node:fs";

interface Pin {
  calls: number;
  closeWhenDone: boolean;
}

/** Descriptors are the process's, so the pins are too. */
const pins = new Map<number, Pin>();

/** fdatasync(fd) in the thread pool; `fd` stays open until it returns, whoever closes it meanwhile. */
export function datasyncPinned(fd: number): Promise<void> {
  pin(fd);
  return new Promise((resolve, reject) => {
    fdatasync(fd, (error) => {
      unpin(fd);
      if (error) reject(error);
      else resolve();
    });
  });
}

/** Writes all of data[offset, +length) at `position` in the thread pool, `fd` pinned meanwhile. */
export function writePinned(fd: number, data: Uint8Array, offset: number, length: number, position: number): Promise<void> {
  pin(fd);
  return new Promise((resolve, reject) => {
    const next = (done: number) => {
      if (done >= length) {
        unpin(fd);
        resolve();
        return;
      }
      write(fd, data, offset + done, length - done, position + done, (error, written) => {
        if (error || written === 0) {
          unpin(fd);
          reject(error ?? Object.assign(new Error("write wrote nothing"), { code: "EIO" }));
        } else {
          next(done + written);
        }
      });
    };
    next(0);
  });
}

/** Closes `fd` now, or when the last pinned call on it returns. */
export function closePinned(fd: number): void {
  const pin = pins.get(fd);
  if (pin === undefined) closeSync(fd);
  else pin.closeWhenDone = true;
}

/** Whether a pinned call on `fd` is running (tests). */
export function isPinned(fd: number): boolean {
  return pins.has(fd);
}

function pin(fd: number): void {
  let pinned = pins.get(fd);
  if (pinned === undefined) pins.set(fd, (pinned = { calls: 0, closeWhenDone: false }));
  pinned.calls++;
}

function unpin(fd: number): void {
  const pin = pins.get(fd)!;
  if (--pin.calls > 0) return;
  pins.delete(fd);
  if (!pin.closeWhenDone) return;
  try {
    closeSync(fd);
  } catch {
    // The owner let go of it already; a failed close of a descriptor nobody uses loses nothing.
  }
}
