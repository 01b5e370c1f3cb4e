/**
 * Every transmission request is checked here before it reaches the device, as nbdkit's
 * `validate_request` does: command known and advertised, flags allowed for it, not a write on a
 * read-only export, inside the export, within the payload limit. A refused request gets the
 * spec's errno and the connection stays open.
 */
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EPERM,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from "../protocol/constants";
import type { RequestHeader } from "../protocol/transmission-frames";

export interface ValidationContext {
  size: number;
  /** The transmission flags sent to the client: what it may use. */
  transmissionFlags: number;
  structuredReplies: boolean;
  /** A metadata context (base:allocation) was selected for this export. */
  metaContextSelected: boolean;
  /** Largest READ/WRITE length; advertised as the maximum block size. */
  maxPayload: number;
}

export interface Rejection {
  errno: number;
  reason: string;
}

/**
 * "Clients MUST NOT set a command flag bit that is not documented for the particular command"
 * — `NBD_CMD_FLAG_FUA` "is valid for all commands, provided `NBD_FLAG_SEND_FUA` has been
 * negotiated"; NO_HOLE and FAST_ZERO belong to WRITE_ZEROES, DF to READ, REQ_ONE to BLOCK_STATUS.
 */
function allowedFlags(type: number, tflags: number): number {
  const fua = tflags & NBD_FLAG_SEND_FUA ? NBD_CMD_FLAG_FUA : 0;
  switch (type) {
    case NBD_CMD_READ:
      return fua | (tflags & NBD_FLAG_SEND_DF ? NBD_CMD_FLAG_DF : 0);
    case NBD_CMD_WRITE_ZEROES:
      return fua | NBD_CMD_FLAG_NO_HOLE | (tflags & NBD_FLAG_SEND_FAST_ZERO ? NBD_CMD_FLAG_FAST_ZERO : 0);
    case NBD_CMD_BLOCK_STATUS:
      return fua | NBD_CMD_FLAG_REQ_ONE;
    default:
      return fua;
  }
}

/** `undefined` when the request may go to the device. */
export function validateRequest(req: RequestHeader, ctx: ValidationContext): Rejection | undefined {
  const { type, flags, offset, length } = req;
  const tflags = ctx.transmissionFlags;

  // "The server SHOULD return `NBD_EINVAL` if it receives an unknown command."
  if (type > NBD_CMD_BLOCK_STATUS || type === NBD_CMD_DISC) {
    return { errno: NBD_EINVAL, reason: `unknown command ${type}` };
  }
  // "SHOULD return `NBD_EINVAL` if it receives an unknown command flag ... or a flag not
  // explicitly documented as applicable to the given request."
  if ((flags & ~allowedFlags(type, tflags)) !== 0) {
    return { errno: NBD_EINVAL, reason: `flags 0x${flags.toString(16)} not allowed for command ${type}` };
  }

  const writes = type === NBD_CMD_WRITE || type === NBD_CMD_TRIM || type === NBD_CMD_WRITE_ZEROES;
  // "it SHOULD return `NBD_EPERM` if it receives a write or trim request on a read-only export";
  // likewise for write zeroes.
  if (writes && tflags & NBD_FLAG_READ_ONLY) return { errno: NBD_EPERM, reason: "export is read-only" };

  // "The client MUST NOT use a feature documented as 'exposed' by a flag unless that flag was set."
  if (type === NBD_CMD_FLUSH && !(tflags & NBD_FLAG_SEND_FLUSH)) return { errno: NBD_EINVAL, reason: "flush not supported" };
  if (type === NBD_CMD_TRIM && !(tflags & NBD_FLAG_SEND_TRIM)) return { errno: NBD_EINVAL, reason: "trim not supported" };
  if (type === NBD_CMD_WRITE_ZEROES && !(tflags & NBD_FLAG_SEND_WRITE_ZEROES)) {
    return { errno: NBD_EINVAL, reason: "write zeroes not supported" };
  }
  // "Servers SHOULD reply with `NBD_EINVAL` to clients sending `NBD_CMD_BLOCK_STATUS` without
  // selecting at least one metadata context."
  if (type === NBD_CMD_BLOCK_STATUS && !(ctx.structuredReplies && ctx.metaContextSelected)) {
    return { errno: NBD_EINVAL, reason: "no metadata context selected" };
  }

  // "For a flush request, *length* and *offset* are reserved, and MUST be set to all-zero."
  if (type === NBD_CMD_FLUSH) {
    return offset === 0 && length === 0 ? undefined : { errno: NBD_EINVAL, reason: "flush with nonzero offset or length" };
  }

  // "The server SHOULD return `NBD_ENOSPC` if it receives a write request including one or more
  // sectors beyond the size of the device ... It SHOULD return `NBD_EINVAL` if it receives a read
  // or trim request including one or more sectors beyond the size of the device"; write zeroes
  // "SHOULD return `NBD_ENOSPC`"; block status "SHOULD return `NBD_EINVAL`".
  if (offset + length > ctx.size) {
    const errno = type === NBD_CMD_WRITE || type === NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
    return { errno, reason: `range ${offset}+${length} beyond export size ${ctx.size}` };
  }

  // "The server SHOULD report an `NBD_EINVAL` error if the client's request ... is larger than the
  // advertised maximum block size." Enforced for the payload-bearing commands; TRIM, WRITE_ZEROES
  // and CACHE carry no payload, so a larger length costs us nothing and we accept it.
  if ((type === NBD_CMD_READ || type === NBD_CMD_WRITE) && length > ctx.maxPayload) {
    return { errno: NBD_EINVAL, reason: `length ${length} exceeds maximum block size ${ctx.maxPayload}` };
  }
  if (type === NBD_CMD_BLOCK_STATUS && length === 0) {
    return { errno: NBD_EINVAL, reason: "block status of zero length" };
  }
  return undefined;
}
