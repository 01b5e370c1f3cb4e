/**
 * Every failure this package reports on purpose is a DbError with a stable `code`; callers branch on the
 * code (the REST API maps VOLUME_EXISTS to 409, the gateway treats COMMIT_CONFLICT as "fenced"), never on
 * the message. Messages are for people and never contain a database password.
 */
export type DbErrorCode =
  /** DATABASE_URL (or the url option) is not a usable postgres:// URL. */
  | "INVALID_DATABASE_URL"
  /** PostgreSQL did not answer, refused the connection, or refused to log us in. */
  | "DATABASE_UNREACHABLE"
  /** The PGlite data folder is already open in another process (or another instance in this one). */
  | "DATABASE_LOCKED"
  /** The PGlite data folder could not be opened (not a database folder, damaged, unreadable). */
  | "DATABASE_OPEN_FAILED"
  /** Applying the migrations failed. */
  | "MIGRATION_FAILED"
  | "INVALID_VOLUME_NAME"
  /** Any other input a query function refused (size, chunk size, chunk map entries…). */
  | "INVALID_ARGUMENT"
  /** A volume with this name already exists for this owner. */
  | "VOLUME_EXISTS"
  | "VOLUME_NOT_FOUND"
  | "USER_NOT_FOUND"
  /** A name lookup without an owner matched volumes of several owners. */
  | "VOLUME_NAME_AMBIGUOUS"
  /** An account with this email already exists. */
  | "EMAIL_TAKEN"
  /** A sign-up invitation (or setup token) that is unknown, used, expired, or a setup token once an account exists. */
  | "INVITATION_INVALID"
  /** The user already has a live device credential with this name. */
  | "DEVICE_NAME_TAKEN"
  /** The volume already has a snapshot with this name. */
  | "SNAPSHOT_EXISTS"
  | "SNAPSHOT_NOT_FOUND"
  /** The commit's epoch was not the next one, or its fencing token is stale: nothing was written. */
  | "COMMIT_CONFLICT";

export class DbError extends Error {
  override readonly name = "DbError";
  readonly code: DbErrorCode;

  constructor(code: DbErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isDbError(err: unknown, code?: DbErrorCode): err is DbError {
  return err instanceof DbError && (code === undefined || err.code === code);
}

/**
 * The PostgreSQL SQLSTATE of a failed query (e.g. "23505" unique_violation), or undefined. Drizzle wraps
 * driver errors in DrizzleQueryError, so the code sits somewhere on the `cause` chain; node-postgres and
 * PGlite both expose it as `code`.
 */
export function sqlStateOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** The constraint a failed query violated, when the driver reports it. */
export function constraintOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const constraint = (e as { constraint?: unknown }).constraint;
    if (typeof constraint === "string") return constraint;
  }
  return undefined;
}
