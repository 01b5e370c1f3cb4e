/**
 * The handshake phase, fixed newstyle only: `initialHandshake` (greeting, client flags), then
 * `haggleOptions` (one option at a time until GO or EXPORT_NAME succeeds, or the client aborts).
 * TLS: NOTLS without `tls`; FORCEDTLS with `tls.required` (every option before STARTTLS but ABORT
 * gets NBD_REP_ERR_TLS_REQD); else SELECTIVETLS. A malformed option that leaves the stream in sync
 * gets an error reply; only a broken frame or an EXPORT_NAME we cannot honour ends the connection.
 * Over our ~400-line aim on purpose: the option loop and the replies of each option are one state
 * machine, read top to bottom against the NBD protocol document.
 */
import type { Logger } from "pino";
import type { DeviceCapabilities } from "@stratus/storage";
import {
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_META_CONTEXT_BASE_ALLOCATION,
  NBD_OPTION_HEADER_SIZE,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
} from "../protocol/constants";
import {
  ProtocolError,
  decodeClientFlags,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  decodeString,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoBlockSize,
  encodeInfoDescription,
  encodeInfoExport,
  encodeInfoName,
  encodeOptionError,
  encodeOptionReply,
  encodeRepInfo,
  encodeRepMetaContext,
  encodeRepServer,
} from "../protocol/handshake-frames";
import type { BlockSizeConstraints } from "../protocol/handshake-frames";
import { ExportRefusedError, type ExportDescription, type ExportRegistry, type OpenedExport } from "./export-registry";

/** What the handshake needs from the connection: exact reads and writes. */
export interface HandshakeIo {
  /** Resolves with exactly `n` bytes; rejects if the connection closes first. */
  readExact(n: number): Promise<Buffer>;
  write(data: Buffer): void;
  /**
   * Resolves once the replies written so far are (mostly) sent: a client that sends options and never
   * reads the answers must not make them pile up in memory. Reading stops meanwhile.
   */
  repliesSent(): Promise<void>;
}

/** STARTTLS as the handshake sees it; the connection does the upgrade. */
export interface HandshakeTls {
  /** FORCEDTLS: nothing but STARTTLS and ABORT before TLS. */
  required: boolean;
  /**
   * Sends `ack` (the NBD_REP_ACK to STARTTLS), upgrades the connection and authenticates the client.
   * Resolves with the exports that client may see; rejects (the session ends) when it is refused.
   */
  upgrade(ack: Buffer): Promise<ExportRegistry>;
}

export interface HandshakeOptions {
  /** What a plaintext client may list and open (unused when TLS is required). */
  registry: ExportRegistry;
  tls?: HandshakeTls;
  logger: Logger;
  /** Largest READ/WRITE payload; advertised as the maximum block size. */
  maxPayload: number;
  /** The client's address, recorded with the export it opens. */
  clientAddress?: string;
}

export interface Negotiated {
  /** The export the client chose; the caller releases it when the connection ends. */
  opened: OpenedExport;
  transmissionFlags: number;
  structuredReplies: boolean;
  /** The id given to base:allocation, or 0 when no metadata context was selected. */
  metaContextId: number;
}

/** Option data larger than this is not a real client: we hang up rather than buffer it. */
export const MAX_OPTION_DATA = 64 * 1024;
/**
 * Options in one handshake. A real client sends a handful (nbdinfo --list: a few per export); one that
 * keeps asking is using the server up: "if a server believes a client's behaviour constitutes a denial
 * of service, it MAY initiate a hard disconnect" (nbdkit allows 32).
 */
export const MAX_OPTIONS_PER_HANDSHAKE = 1024;
/** The id we give base:allocation (any nonzero value; the client treats it as opaque). */
export const BASE_ALLOCATION_CONTEXT_ID = 1;
/** Defaults from the spec: "a default minimum block size of 1, a preferred block size of 2^12". */
const MINIMUM_BLOCK_SIZE = 1;
const PREFERRED_BLOCK_SIZE = 4096;

/** The transmission flags an export gets: "The server MUST NOT set the flag for features it does not support." */
export function transmissionFlagsFor(capabilities: DeviceCapabilities): number {
  let flags = NBD_FLAG_HAS_FLAGS;
  if (capabilities.readOnly) flags |= NBD_FLAG_READ_ONLY;
  if (capabilities.canFlush) flags |= NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA;
  if (!capabilities.readOnly && capabilities.canTrim) flags |= NBD_FLAG_SEND_TRIM;
  // "Servers MAY set this transmission flag even if it will always use `NBD_ENOTSUP` failures for
  // requests with `NBD_CMD_FLAG_FAST_ZERO` set": advertising FAST_ZERO with WRITE_ZEROES lets a
  // client such as qemu-img learn quickly whether pre-zeroing pays off.
  if (!capabilities.readOnly && capabilities.canZero) flags |= NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
  if (capabilities.canCache) flags |= NBD_FLAG_SEND_CACHE;
  if (capabilities.canMultiConn) flags |= NBD_FLAG_CAN_MULTI_CONN;
  return flags;
}

/** Runs the whole handshake. `undefined` when the client ended it (NBD_OPT_ABORT). */
export async function negotiate(io: HandshakeIo, options: HandshakeOptions): Promise<Negotiated | undefined> {
  const clientFlags = await initialHandshake(io);
  return haggleOptions(io, options, { noZeroes: (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0 });
}

/**
 * S: 64 bits, `NBDMAGIC`; S: 64 bits, `IHAVEOPT`; S: 16 bits, handshake flags; C: 32 bits, client flags.
 * "the server MUST drop the TCP connection if the client sets an unknown flag, or a flag that
 * does not match something advertised by the server."
 */
export async function initialHandshake(io: HandshakeIo): Promise<number> {
  io.write(encodeGreeting(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
  const clientFlags = decodeClientFlags(await io.readExact(4));
  if ((clientFlags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) !== 0) {
    throw new ProtocolError(`unknown client flags 0x${clientFlags.toString(16)}`, true);
  }
  return clientFlags;
}

interface HaggleState {
  noZeroes: boolean;
  /** The exports this client may list and open: the plaintext ones, or its credential's after TLS. */
  registry: ExportRegistry;
  tlsActive: boolean;
  structuredReplies: boolean;
  /** Export named in the last SET_META_CONTEXT, and whether it selected base:allocation. */
  metaExport: string | undefined;
  metaSelected: boolean;
}

export async function haggleOptions(io: HandshakeIo, options: HandshakeOptions, init: { noZeroes: boolean }): Promise<Negotiated | undefined> {
  let state = freshState(init.noZeroes, options.registry, false);
  for (let count = 1; ; count++) {
    await io.repliesSent();
    if (count > MAX_OPTIONS_PER_HANDSHAKE) throw new ProtocolError(`more than ${MAX_OPTIONS_PER_HANDSHAKE} options in one handshake`, true);
    const { option, length } = decodeOptionHeader(await io.readExact(NBD_OPTION_HEADER_SIZE));
    if (length > MAX_OPTION_DATA) throw new ProtocolError(`option ${option} data length ${length} too large`, true);
    const data = await io.readExact(length);
    options.logger.debug({ option, length }, "nbd option");
    const reply = (type: number, payload?: Buffer) => io.write(encodeOptionReply(option, type, payload));
    const error = (type: number, message: string) => io.write(encodeOptionError(option, type, message));

    // FORCEDTLS: "If the server receives any other option, it MUST reply with `NBD_REP_ERR_TLS_REQD`
    // if TLS has not been initiated", and EXPORT_NAME, which cannot be answered with an error, "MUST
    // terminate the session".
    if (options.tls?.required && !state.tlsActive && option !== NBD_OPT_STARTTLS && option !== NBD_OPT_ABORT) {
      if (option === NBD_OPT_EXPORT_NAME) throw new ProtocolError("EXPORT_NAME before TLS on a listener that requires TLS", true);
      error(NBD_REP_ERR_TLS_REQD, "this server requires TLS: send NBD_OPT_STARTTLS first");
      continue;
    }

    switch (option) {
      case NBD_OPT_EXPORT_NAME: {
        // "If the chosen export does not exist ... the server MUST terminate the session."
        let name: string;
        try {
          name = decodeString(data, "export name");
        } catch (cause) {
          throw new ProtocolError(`EXPORT_NAME: ${(cause as Error).message}`, true);
        }
        const opened = await openExport(state.registry, options, name);
        if (isRefused(opened)) throw new ProtocolError(`EXPORT_NAME: ${opened.refused}`, true);
        if (!opened) throw new ProtocolError(`EXPORT_NAME: unknown export ${JSON.stringify(name)}`, true);
        const flags = transmissionFlagsFor(opened.device.capabilities);
        io.write(encodeExportNameReply(opened.device.size, flags, state.noZeroes));
        return negotiated(opened, flags, state, name);
      }

      case NBD_OPT_ABORT:
        // "The server MUST reply with `NBD_REP_ACK`" (and "SHOULD ignore any data sent").
        reply(NBD_REP_ACK);
        return undefined;

      case NBD_OPT_LIST: {
        // "the server SHOULD reject a request that includes data with `NBD_REP_ERR_INVALID`."
        if (length !== 0) {
          error(NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
          break;
        }
        for (const e of await state.registry.list()) io.write(encodeRepServer(option, e.name, e.description));
        reply(NBD_REP_ACK);
        break;
      }

      case NBD_OPT_STARTTLS:
        if (length !== 0) {
          error(NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data");
        } else if (!options.tls) {
          // NOTLS mode: "it MUST respond with `NBD_REP_ERR_POLICY` (if it does not support TLS for
          // policy reasons)".
          error(NBD_REP_ERR_POLICY, "TLS is not offered on this listener");
        } else if (state.tlsActive) {
          // "If the server receives `NBD_OPT_STARTTLS` when TLS has already been negotiated, it MUST
          // reply with `NBD_REP_ERR_INVALID`."
          error(NBD_REP_ERR_INVALID, "TLS is already active");
        } else {
          // "it MUST reply with `NBD_REP_ACK` ... all further data MUST be sent and received over
          // TLS". Nothing agreed in plaintext carries over: a man in the middle may have chosen it.
          const registry = await options.tls.upgrade(encodeOptionReply(option, NBD_REP_ACK));
          state = freshState(state.noZeroes, registry, true);
        }
        break;

      case NBD_OPT_INFO:
      case NBD_OPT_GO: {
        let request;
        try {
          request = decodeInfoRequest(data);
        } catch (cause) {
          error(NBD_REP_ERR_INVALID, (cause as Error).message);
          break;
        }
        // INFO opens nothing (no lease is taken: a probe never disturbs the device that holds it).
        const found =
          option === NBD_OPT_INFO && state.registry.describe
            ? await describeExport(state.registry, options, request.name)
            : await openExport(state.registry, options, request.name);
        if (isRefused(found)) {
          // Another device holds the export. "`NBD_REP_ERR_POLICY`: The option sent by the client is
          // known by this server and syntactically valid, but server-side policy forbids the server to
          // allow the option": one device at a time is that policy, and the message names the holder.
          error(NBD_REP_ERR_POLICY, found.refused);
          break;
        }
        if (!found) {
          // "`NBD_REP_ERR_UNKNOWN`: The chosen export does not exist on this server. In this case,
          // the server SHOULD NOT send `NBD_REP_INFO` replies."
          error(NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(request.name)}`);
          break;
        }
        const info: ExportDescription = "device" in found ? { ...found, size: found.device.size, capabilities: found.device.capabilities } : found;
        const flags = transmissionFlagsFor(info.capabilities);
        // "the server MUST send at least one `NBD_REP_INFO`, with an `NBD_INFO_EXPORT` information type."
        io.write(encodeRepInfo(option, encodeInfoExport(info.size, flags)));
        if (request.requests.includes(NBD_INFO_NAME)) io.write(encodeRepInfo(option, encodeInfoName(info.name)));
        if (request.requests.includes(NBD_INFO_DESCRIPTION) && info.description) {
          io.write(encodeRepInfo(option, encodeInfoDescription(info.description)));
        }
        // Sent even when not requested: our maximum is not the default ("effectively unlimited"),
        // and "A server with block size constraints other than the default SHOULD advertise" them.
        io.write(encodeRepInfo(option, encodeInfoBlockSize(blockSizes(options, info.size))));
        reply(NBD_REP_ACK);
        if ("device" in found) {
          if (option === NBD_OPT_GO) return negotiated(found, flags, state, request.name);
          await found.release();
        }
        break;
      }

      case NBD_OPT_STRUCTURED_REPLY:
        // "The client MUST NOT send any additional data with the option, and the server SHOULD
        // reject a request that includes data with `NBD_REP_ERR_INVALID`."
        if (length !== 0) {
          error(NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
          break;
        }
        state.structuredReplies = true;
        reply(NBD_REP_ACK);
        break;

      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT: {
        const setting = option === NBD_OPT_SET_META_CONTEXT;
        // "Issuing this command replaces all previously-set metadata contexts (including when this
        // command fails)".
        if (setting) {
          state.metaExport = undefined;
          state.metaSelected = false;
        }
        // SET: "This option MUST NOT be requested unless structured replies have been negotiated
        // first. If a client attempts to do so, a server SHOULD send `NBD_REP_ERR_INVALID`."
        // LIST: "a server MAY send `NBD_REP_ERR_INVALID`" — we do, as nbdkit does.
        if (!state.structuredReplies) {
          error(NBD_REP_ERR_INVALID, "negotiate NBD_OPT_STRUCTURED_REPLY first");
          break;
        }
        let request;
        try {
          request = decodeMetaContextRequest(data);
        } catch (cause) {
          error(NBD_REP_ERR_INVALID, (cause as Error).message);
          break;
        }
        if (request.queries.some((q) => !q.includes(":"))) {
          error(NBD_REP_ERR_INVALID, "a metadata context query must start with a namespace and a colon");
          break;
        }
        const matches = setting
          ? // "`base:` - the server MUST ignore this form during `NBD_OPT_SET_META_CONTEXT`"
            request.queries.some((q) => q === NBD_META_CONTEXT_BASE_ALLOCATION)
          : // "If zero queries are sent, then the server MUST return all the metadata contexts";
            // "`base:` ... MUST support this as a wildcard during `NBD_OPT_LIST_META_CONTEXT`".
            request.queries.length === 0 || request.queries.some((q) => q === "base:" || q === NBD_META_CONTEXT_BASE_ALLOCATION);
        if (matches) {
          // "The metadata context ID in these replies is reserved and SHOULD be set to zero" (LIST).
          io.write(encodeRepMetaContext(option, setting ? BASE_ALLOCATION_CONTEXT_ID : 0, NBD_META_CONTEXT_BASE_ALLOCATION));
        }
        if (setting) {
          state.metaExport = request.exportName;
          state.metaSelected = matches;
        }
        reply(NBD_REP_ACK);
        break;
      }

      default:
        // "`NBD_REP_ERR_UNSUP` ... The option sent by the client is unknown by this server".
        error(NBD_REP_ERR_UNSUP, `option ${option} is not supported`);
        break;
    }
  }
}

function freshState(noZeroes: boolean, registry: ExportRegistry, tlsActive: boolean): HaggleState {
  return { noZeroes, registry, tlsActive, structuredReplies: false, metaExport: undefined, metaSelected: false };
}

function negotiated(opened: OpenedExport, transmissionFlags: number, state: HaggleState, name: string): Negotiated {
  // BLOCK_STATUS needs SET_META_CONTEXT whose "final time ... referred to the same export name".
  const selected = state.structuredReplies && state.metaSelected && state.metaExport === name;
  return {
    opened,
    transmissionFlags,
    structuredReplies: state.structuredReplies,
    metaContextId: selected ? BASE_ALLOCATION_CONTEXT_ID : 0,
  };
}

/** Refused: the export exists, but the client may not have it now (the message says why). */
interface Refused {
  refused: string;
}

function isRefused(value: unknown): value is Refused {
  return typeof value === "object" && value !== null && "refused" in value;
}

async function openExport(registry: ExportRegistry, options: HandshakeOptions, name: string): Promise<OpenedExport | Refused | undefined> {
  return answerOrLog(options, name, () => registry.open(name, { clientAddress: options.clientAddress }));
}

async function describeExport(registry: ExportRegistry, options: HandshakeOptions, name: string): Promise<ExportDescription | Refused | undefined> {
  return answerOrLog(options, name, () => registry.describe!(name));
}

async function answerOrLog<T>(options: HandshakeOptions, name: string, ask: () => Promise<T | undefined>): Promise<T | Refused | undefined> {
  try {
    return await ask();
  } catch (err) {
    if (err instanceof ExportRefusedError) {
      options.logger.info({ exportName: name, reason: err.message }, "nbd export refused");
      return { refused: err.message };
    }
    // Opening failed below us (database, store): the client learns only that it is unavailable.
    options.logger.error({ err, exportName: name }, "nbd export could not be opened");
    return undefined;
  }
}

function blockSizes(options: HandshakeOptions, size: number): BlockSizeConstraints {
  // "MUST be at least as large as the smaller of the preferred block size or export size".
  return {
    minimum: MINIMUM_BLOCK_SIZE,
    preferred: PREFERRED_BLOCK_SIZE,
    maximum: Math.max(options.maxPayload, Math.min(PREFERRED_BLOCK_SIZE, size)),
  };
}
