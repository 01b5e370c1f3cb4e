/**
 * Every number on the NBD wire, named as the protocol document names it
 * (NetworkBlockDevice/nbd, doc/proto.md). Nothing else in the gateway spells a wire value.
 *
 * 64-bit magics are BigInt: they appear only in the handshake, never on the transmission hot path.
 */

// --- Magics -----------------------------------------------------------------------------------

/** "S: 64 bits, `0x4e42444d41474943` (ASCII '`NBDMAGIC`') (also known as the `INIT_PASSWD`)" */
export const NBD_INIT_PASSWD = 0x4e42444d41474943n;
/** "S: 64 bits, `0x49484156454F5054` (ASCII '`IHAVEOPT`')" — also prefixes every client option. */
export const NBD_IHAVEOPT = 0x49484156454f5054n;
/** "S: 64 bits, `0x3e889045565a9` (magic number for replies)" to options. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
/** "C: 32 bits, 0x25609513, magic (`NBD_REQUEST_MAGIC`)" */
export const NBD_REQUEST_MAGIC = 0x25609513;
/** "S: 32 bits, 0x67446698, magic (`NBD_SIMPLE_REPLY_MAGIC`; used to be `NBD_REPLY_MAGIC`)" */
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
/** "S: 32 bits, 0x668e33ef, magic (`NBD_STRUCTURED_REPLY_MAGIC`)" */
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// --- Handshake flags (server, 16 bits) ----------------------------------------------------------

/** "bit 0, `NBD_FLAG_FIXED_NEWSTYLE`; MUST be set by servers that support the fixed newstyle protocol" */
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
/** "bit 1, `NBD_FLAG_NO_ZEROES`" */
export const NBD_FLAG_NO_ZEROES = 1 << 1;

// --- Client flags (32 bits) ---------------------------------------------------------------------

export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// --- Transmission flags (16 bits) ---------------------------------------------------------------

export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

// --- Option types -------------------------------------------------------------------------------

export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
/** Newer revisions of the document; we answer it NBD_REP_ERR_UNSUP and clients fall back. */
export const NBD_OPT_EXTENDED_HEADERS = 11;

// --- Option reply types -------------------------------------------------------------------------

export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
/** "error reply types, all of which are denoted by having bit 31 set" */
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_PLATFORM = 0x80000004;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;
export const NBD_REP_ERR_TOO_BIG = 0x80000009;

// --- NBD_REP_INFO information types -------------------------------------------------------------

export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// --- Commands -----------------------------------------------------------------------------------

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;
export const NBD_CMD_RESIZE = 8;

// --- Command flags (16 bits) --------------------------------------------------------------------

export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

// --- Structured replies -------------------------------------------------------------------------

export const NBD_REPLY_FLAG_DONE = 1 << 0;

export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
/** "All error chunk types have bit 15 set" */
export const NBD_REPLY_TYPE_ERROR = (1 << 15) + 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

// --- base:allocation ----------------------------------------------------------------------------

export const NBD_META_CONTEXT_BASE_ALLOCATION = "base:allocation";
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;

// --- Error values ("the allowed values for the error field have been restricted") --------------

export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

// --- Sizes --------------------------------------------------------------------------------------

/** Server greeting: NBDMAGIC(8) IHAVEOPT(8) handshake flags(2). */
export const NBD_GREETING_SIZE = 18;
/** Client option header: IHAVEOPT(8) option(4) length(4). */
export const NBD_OPTION_HEADER_SIZE = 16;
/** Option reply header: magic(8) option(4) type(4) length(4). */
export const NBD_OPTION_REPLY_HEADER_SIZE = 20;
/** Request: magic(4) flags(2) type(2) handle(8) offset(8) length(4). */
export const NBD_REQUEST_SIZE = 28;
/** Simple reply: magic(4) error(4) handle(8). */
export const NBD_SIMPLE_REPLY_SIZE = 16;
/** Structured chunk header: magic(4) flags(2) type(2) handle(8) length(4). */
export const NBD_STRUCTURED_REPLY_HEADER_SIZE = 20;
/** "S: 124 bytes, zeroes (reserved) (unless `NBD_FLAG_C_NO_ZEROES` was negotiated by the client)" */
export const NBD_EXPORT_NAME_ZEROES = 124;
/** "MUST be no longer than 4096 bytes. This applies to export names and error messages" */
export const NBD_MAX_STRING_LENGTH = 4096;
