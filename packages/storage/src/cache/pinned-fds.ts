/**
 * fdatasync through a descriptor the cache already holds, in one thread-pool call (a FLUSH used to
 * open, sync and close each file: three hops). While such a call runs, the descriptor is pinned: a
 * close asked for meanwhile waits for the last call to end, because a closed number can be handed
 * to another file at once and the pending call would then sync that file instead.
 */
import { closeSync, fdatasync } from "node:fs";

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

/** Closes `fd` now, or when the last pinned call on it returns. */
export function closePinned(fd: number): void {
  const pinned = pins.get(fd);
  if (pinned === undefined) closeSync(fd);
  else pinned.closeWhenDone = true;
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
  const pinned = pins.get(fd)!;
  if (--pinned.calls > 0) return;
  pins.delete(fd);
  if (!pinned.closeWhenDone) return;
  try {
    closeSync(fd);
  } catch {
    // The owner let go of it already; a failed close of a descriptor nobody uses loses nothing.
  }
}
