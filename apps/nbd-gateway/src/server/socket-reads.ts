/**
 * Reads from accepted NBD sockets land in ONE 512 KiB buffer that every connection reuses, not a
 * fresh Buffer per read: fewer allocations, GCs and syscalls per byte. This is safe because a read
 * callback runs to completion before libuv reads the next socket, so it must consume or copy every
 * byte it is given (FrameReader.pushTransient / keepRemainder). A connection may say where its next
 * read goes (`ReadTargets`): the rest of a large WRITE payload straight into the payload's buffer.
 */
import net from "node:net";

export const READ_BUFFER_SIZE = 512 * 1024;

let shared: Buffer | undefined;

/** Where a socket's bytes go: `transient` chunks are overwritten once the callback returns. */
export type BytesHandler = (chunk: Buffer, transient: boolean) => void;

/** A connection's say in where its next read lands (asked after every read). */
export interface ReadTargets {
  /**
   * A Buffer: read into it, then report with `onTargetRead`. A number: read at most that many bytes
   * into the shared buffer (delivered to the BytesHandler as usual). undefined: the shared buffer.
   */
  next(): Buffer | number | undefined;
  /** `bytes` were read into the Buffer `next()` gave last. */
  onTargetRead(bytes: number): void;
}

interface HandleCarrier {
  _handle?: unknown;
}

/**
 * Takes over a socket accepted with `pauseOnConnect: true` and delivers its bytes to `onBytes`.
 * Returns the socket to use from now on (for writes, pause/resume, events). Node offers `onread`
 * only to sockets it constructs, so the handle moves to a new Socket through the undocumented
 * `handle` option and `_handle` property; without them, 'data' events (a test checks which is used).
 */
export function readAcceptedSocket(accepted: net.Socket, onBytes: BytesHandler, targets?: ReadTargets): net.Socket {
  const carrier = accepted as unknown as HandleCarrier;
  const handle = carrier._handle;
  if (handle === null || typeof handle !== "object") {
    accepted.on("data", (chunk: Buffer) => onBytes(chunk, false));
    accepted.resume();
    return accepted;
  }
  const sharedBuffer = (shared ??= Buffer.allocUnsafeSlow(READ_BUFFER_SIZE));
  const nextBuffer = (): Buffer => {
    const target = targets?.next();
    if (target === undefined) return sharedBuffer;
    if (typeof target === "number") return sharedBuffer.subarray(0, Math.max(1, Math.min(target, READ_BUFFER_SIZE)));
    return target.length > 0 ? target : sharedBuffer;
  };
  const socket = new net.Socket({
    handle,
    onread: {
      buffer: nextBuffer,
      callback: (bytes: number, buffer: Uint8Array) => {
        // The shared buffer (whole or cut short) has its own memory; a target is someone else's.
        if (buffer.buffer === sharedBuffer.buffer) onBytes((buffer as Buffer).subarray(0, bytes), true);
        else targets!.onTargetRead(bytes);
        return true;
      },
    },
  } as net.SocketConstructorOpts);
  // The old object gives up the handle without closing it: its destroy() then only settles the
  // server's connection count (which the new socket is not part of; NbdServer tracks its own).
  carrier._handle = null;
  accepted.destroy();
  return socket;
}
