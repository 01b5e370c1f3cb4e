/**
 * The one interface every object store implements (local directory, S3, memory, and the wrappers
 * that stack on them: retry, fault injection). Keys are `/`-separated strings; listings are in
 * byte order of the key so a caller can resume with `startAfter`.
 */
export interface ObjectStore {
  /**
   * Whether put() signs the body's SHA-256 (S3's SigV4). false: it never looks at
   * PutOptions.sha256, so a caller need not compute one. Unset: assume it does.
   */
  readonly signsPayload?: boolean;
  /** Stores `body` under `key`, replacing any previous object. Visible to `get` once resolved. */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;
  /** The object's bytes (or `range` of them), or `undefined` when no object has that key. */
  get(key: string, range?: ByteRange, options?: GetOptions): Promise<Buffer | undefined>;
  /** Size of the object, or `undefined` when missing. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Deletes the keys that exist; missing keys are not an error. */
  deleteMany(keys: readonly string[]): Promise<void>;
  /** One page of keys under `prefix`, in key order, strictly after `startAfter`. */
  list(options: ListOptions): Promise<ListPage>;
  /** Releases sockets, file handles. */
  close(): Promise<void>;
}

export interface GetOptions {
  /**
   * Where a body of `length` bytes may be received (e.g. reused shared memory the caller releases
   * once done with it). Stores that receive in pieces use it; others return their own buffer.
   */
  allocate?: (length: number) => Buffer;
}

export interface PutOptions {
  /**
   * Hex SHA-256 of `body`, when the caller already has it (computed off the event loop): S3 signs it
   * as the payload hash instead of hashing the body again. Stores that do not sign ignore it.
   */
  sha256?: string;
  /**
   * Called once when no attempt of this put reads `body` any more, so the caller may reuse its
   * memory: when the put settled and, behind a retry layer, every attempt it gave up on as stalled
   * settled too. A store that never calls it only costs the caller that reuse.
   */
  onBodyReleased?: () => void;
}

export interface ByteRange {
  offset: number;
  length: number;
}

export interface ObjectInfo {
  key: string;
  size: number;
}

export interface ListOptions {
  prefix: string;
  startAfter?: string;
  /** Page size; stores may return fewer. Default 1000. */
  limit?: number;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** True when more keys follow the last one returned (resume with startAfter = last key). */
  truncated: boolean;
}
