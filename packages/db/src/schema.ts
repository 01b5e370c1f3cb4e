/**
 * The Stratus schema. drizzle-kit generates the named migrations in ../drizzle from this file
 * (`npm run generate -- --name <what_changed>`); never edit a generated migration, add a new one.
 *
 * Conventions: ids are prefixed random text (see ids.ts); timestamps are timestamptz; 64-bit counters
 * use bigint in "number" mode, which is exact up to 2^53 — far beyond any volume size, chunk index,
 * epoch or generation we will reach.
 */
import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, integer, jsonb, pgTable, primaryKey, text, timestamp, unique, uniqueIndex } from "drizzle-orm/pg-core";
import { VOLUME_COMPRESSIONS, VOLUME_DURABILITIES, VOLUME_STATES } from "./column-values";

export const users = pgTable("users", {
  id: text("id").primaryKey(), // usr_…
  // Unique: the login name. Compared as stored; callers normalise case before inserting.
  email: text("email").notNull().unique(),
  // Null until accounts with passwords exist (the embedded default has one local user without one).
  passwordHash: text("password_hash"),
  isAdmin: boolean("is_admin").notNull().default(false),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
});

export { VOLUME_COMPRESSIONS, VOLUME_DURABILITIES, VOLUME_STATES } from "./column-values";
export type { VolumeCompression, VolumeDurability, VolumeState } from "./column-values";

/**
 * A wrapped key slot as stored (the shape is packages/storage's KeySlot; this package only keeps it).
 * It holds a KDF's salt and parameters, a nonce and the data key encrypted under a passphrase-derived
 * or master key: never a passphrase or a plain key.
 */
export type StoredKeySlot =
  | { kind: "passphrase"; kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string }; nonce: string; wrapped: string }
  | { kind: "master"; masterKeyId: string; nonce: string; wrapped: string };

/** An ancestor's data key sealed with a clone's data key (AES-256-GCM; the shape is storage's InheritedKey). */
export type StoredInheritedKey = { volumeId: string; nonce: string; wrapped: string };

/** The snapshot a clone was made from, as it was named then. */
export type CloneOrigin = { volumeId: string; volumeName: string; snapshotId: string; snapshotName: string };

export const volumes = pgTable(
  "volumes",
  {
    id: text("id").primaryKey(), // vol_…
    // restrict, not cascade: deleting a user must first delete their volumes (and so their bucket
    // objects); a cascade here would orphan chunk objects nobody could find any more.
    ownerId: text("owner_id")
      .notNull()
      .references(() => users.id, { onDelete: "restrict" }),
    // Also the NBD export name in the embedded default. Format checked twice: zod in volumes.ts gives
    // the clear message, the CHECK below keeps any other writer honest.
    name: text("name").notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
    // Bytes per chunk object, a power of two fixed at creation (changing it would re-key every chunk).
    chunkSize: integer("chunk_size").notNull(),
    // 'deleting': the row stays while the volume's bucket objects are removed, so a crash mid-delete
    // can resume; a deleting volume is no longer listed as attachable. 'importing': an import job is
    // filling it (only that job's connection may open it); it becomes 'active' once committed, or
    // 'deleting' when the import fails or is cancelled, so no half-imported volume is ever attachable.
    state: text("state", { enum: VOLUME_STATES }).notNull().default("active"),
    // The number of the last committed chunk map. Each commit moves it from N-1 to N in the same
    // transaction as the map rows, so a commit computed against a stale map is refused.
    commitEpoch: bigint("commit_epoch", { mode: "number" }).notNull().default(0),
    // Raised each time a gateway takes the volume's lease (leases issue); a commit carrying an older
    // token comes from a gateway that lost the lease and is refused.
    fencingToken: bigint("fencing_token", { mode: "number" }).notNull().default(0),
    // When FLUSH returns: 'local' after the gateway's cache is fsynced (the cloud commit follows after
    // STRATUS_COMMIT_IDLE without writes, or within STRATUS_COMMIT_INTERVAL), 'cloud' after the commit reached the bucket and this row.
    durability: text("durability", { enum: VOLUME_DURABILITIES }).notNull().default("local"),
    compression: text("compression", { enum: VOLUME_COMPRESSIONS }).notNull().default("zstd"),
    // The volume's data key, wrapped (LUKS-like slots: passphrase and/or the deployment's master key).
    // Useless without a passphrase or the master key; the same slots sit in the bucket's volume header.
    keySlots: jsonb("key_slots").$type<StoredKeySlot[]>().notNull().default([]),
    // A clone's ancestors' data keys, each sealed with this volume's data key (docs/snapshots-design.md):
    // useless without it. The clone reads the chunks it shares with them under their own keys.
    inheritedKeys: jsonb("inherited_keys").$type<StoredInheritedKey[]>().notNull().default([]),
    // Where a clone came from, for people (the snapshot may be deleted since: nothing depends on it).
    clonedFrom: jsonb("cloned_from").$type<CloneOrigin | null>(),
    // Set by every successful commit; null until the first.
    lastCommitAt: timestamp("last_commit_at", { withTimezone: true, mode: "date" }),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" })
      .notNull()
      .defaultNow()
      .$onUpdate(() => new Date()),
  },
  (t) => [
    // A name means one volume per owner; this index also serves "find by owner and name" and, through
    // its leading column, "list an owner's volumes" and the restrict check when a user is deleted.
    unique("volumes_owner_id_name_unique").on(t.ownerId, t.name),
    check("volumes_name_format", sql`${t.name} ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'`),
    check("volumes_state_valid", sql`${t.state} in ('active', 'deleting', 'importing')`),
    check("volumes_size_positive", sql`${t.sizeBytes} > 0 and ${t.chunkSize} > 0`),
    check("volumes_durability_valid", sql`${t.durability} in ('local', 'cloud')`),
    check("volumes_compression_valid", sql`${t.compression} in ('zstd', 'none')`),
  ],
);

/**
 * The chunk map: for each chunk that has an object, the generation that is current. A chunk without a
 * row has no object and reads as zeros (sparse volumes cost nothing for unwritten space).
 */
export const volumeChunks = pgTable(
  "volume_chunks",
  {
    // cascade: chunk rows mean nothing without their volume, and a volume has up to millions of them.
    volumeId: text("volume_id")
      .notNull()
      .references(() => volumes.id, { onDelete: "cascade" }),
    chunkIndex: bigint("chunk_index", { mode: "number" }).notNull(),
    // Part of the object key vol/<volumeId>/c/<index>/<generation>; a rewrite uploads a new generation.
    generation: bigint("generation", { mode: "number" }).notNull(),
    // Bytes of the stored object (after compression/encryption): what the chunk costs in the bucket.
    storedSize: integer("stored_size").notNull(),
    // Null: the object is the volume's own (vol/<volumeId>/…). A clone's chunk it has not rewritten yet
    // names the ancestor whose object it reads (vol/<ownerVolumeId>/…); no FK: the ancestor may be gone.
    ownerVolumeId: text("owner_volume_id"),
  },
  // Loading a map scans the primary key in chunk order, commits upsert through it, and the cascade
  // delete finds a volume's rows through its leading column. The partial index answers the GC's
  // "does a clone still read this ancestor's object?".
  (t) => [
    primaryKey({ name: "volume_chunks_pkey", columns: [t.volumeId, t.chunkIndex] }),
    index("volume_chunks_owner_idx")
      .on(t.ownerVolumeId, t.chunkIndex, t.generation)
      .where(sql`${t.ownerVolumeId} is not null`),
  ],
);

/**
 * Chunk generations no commit references any more (overwritten or trimmed), written by the commit that
 * superseded them in the same transaction. The GC job deletes their objects once `superseded_at` is
 * older than the grace period (readers that loaded an older map may still be fetching them), then the
 * rows. An object with a row here is never an orphan.
 */
export const volumeGarbage = pgTable(
  "volume_garbage",
  {
    volumeId: text("volume_id")
      .notNull()
      .references(() => volumes.id, { onDelete: "cascade" }),
    chunkIndex: bigint("chunk_index", { mode: "number" }).notNull(),
    generation: bigint("generation", { mode: "number" }).notNull(),
    supersededAt: timestamp("superseded_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    // Null: the volume's own object; else the ancestor's object a clone stopped reading.
    ownerVolumeId: text("owner_volume_id"),
  },
  (t) => [
    // One object, one row: a retried garbage insert is a no-op (ON CONFLICT DO NOTHING).
    primaryKey({ name: "volume_garbage_pkey", columns: [t.volumeId, t.chunkIndex, t.generation] }),
    // The GC query: "this volume's rows superseded before <now - grace>, oldest first" is a range scan.
    index("volume_garbage_volume_superseded_idx").on(t.volumeId, t.supersededAt),
  ],
);

/**
 * A snapshot pins one commit epoch of a volume: its chunk map as it was then, copied into
 * snapshot_chunks in the transaction that creates the row (no object is written). The GC keeps every
 * object a snapshot names; the bucket keeps a sealed copy under vol/<volumeId>/s/<snapshotId>.
 */
export const volumeSnapshots = pgTable(
  "volume_snapshots",
  {
    id: text("id").primaryKey(), // snp_…
    // cascade: a deleted volume's snapshots go with it (its delete job keeps what clones still read).
    volumeId: text("volume_id")
      .notNull()
      .references(() => volumes.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    epoch: bigint("epoch", { mode: "number" }).notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    unique("volume_snapshots_volume_name_unique").on(t.volumeId, t.name),
    check("volume_snapshots_name_format", sql`${t.name} ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'`),
  ],
);

/** A snapshot's chunk map: the objects it reads, each under its owner's prefix. */
export const snapshotChunks = pgTable(
  "snapshot_chunks",
  {
    snapshotId: text("snapshot_id")
      .notNull()
      .references(() => volumeSnapshots.id, { onDelete: "cascade" }),
    chunkIndex: bigint("chunk_index", { mode: "number" }).notNull(),
    generation: bigint("generation", { mode: "number" }).notNull(),
    storedSize: integer("stored_size").notNull(),
    // Whose object: the snapshot's volume, or an ancestor of it when the volume is a clone.
    ownerVolumeId: text("owner_volume_id").notNull(),
  },
  (t) => [
    primaryKey({ name: "snapshot_chunks_pkey", columns: [t.snapshotId, t.chunkIndex] }),
    // The GC's "does a snapshot still name this object?".
    index("snapshot_chunks_owner_idx").on(t.ownerVolumeId, t.chunkIndex, t.generation),
  ],
);

export const TOKEN_SCOPES = ["read", "write"] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/**
 * API tokens: `stratus_<prefix>_<secret>` is shown once; only its SHA-256 is kept (a token is 32 random
 * bytes, so a fast hash is enough: there is nothing to brute-force). The prefix is shown in lists so a
 * person can tell tokens apart, and is how a presented token finds its row.
 */
export const apiTokens = pgTable(
  "api_tokens",
  {
    id: text("id").primaryKey(), // tok_…
    // cascade: a token means nothing without its user.
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    // 8 random base58 characters, unique: the visible part of the token.
    prefix: text("prefix").notNull().unique(),
    // hex SHA-256 of the whole token string.
    secretHash: text("secret_hash").notNull(),
    scope: text("scope", { enum: TOKEN_SCOPES }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
    // Written at most once a minute per token (authentication must not write on every request).
    lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    // "a user's tokens, newest first" (the tokens page).
    index("api_tokens_user_created_idx").on(t.userId, t.createdAt),
    check("api_tokens_scope_valid", sql`${t.scope} in ('read', 'write')`),
  ],
);

/**
 * Who did what when: one row per state change (volume created, resized, passphrase changed, token
 * revoked…). volume_id has no foreign key on purpose: a deleted volume's history stays readable by its
 * owner. `detail` holds names and sizes, never a secret.
 */
export const activityLog = pgTable(
  "activity_log",
  {
    id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    // The owner of what was acted on: reads are authorised by this column.
    ownerId: text("owner_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    // Who acted: the user, and through what (session, token id, local CLI).
    actorId: text("actor_id"),
    via: text("via").notNull(),
    tokenId: text("token_id"),
    volumeId: text("volume_id"),
    // The volume's name when it happened (names can be reused after a delete; the id cannot).
    volumeName: text("volume_name"),
    // e.g. volume.create, volume.resize, volume.passphrase, volume.unlock, volume.delete, token.create.
    action: text("action").notNull(),
    detail: jsonb("detail").$type<Record<string, unknown>>().notNull().default({}),
    ip: text("ip"),
    at: timestamp("at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [
    // A volume's history, newest first (the detail page).
    index("activity_log_volume_at_idx").on(t.volumeId, t.at),
    // An owner's history, newest first.
    index("activity_log_owner_at_idx").on(t.ownerId, t.at),
    // "the last delete of the volume this owner called NAME" (delete progress after the row is gone).
    index("activity_log_owner_name_idx").on(t.ownerId, t.volumeName, t.at),
  ],
);

/**
 * Per-volume figures sampled by the gateway holding the volume (every 10 s while open), for the charts.
 * Counters are cumulative since the engine opened; the chart takes differences. Kept 7 days.
 */
export const volumeSamples = pgTable(
  "volume_samples",
  {
    volumeId: text("volume_id")
      .notNull()
      .references(() => volumes.id, { onDelete: "cascade" }),
    at: timestamp("at", { withTimezone: true, mode: "date" }).notNull(),
    storedBytes: bigint("stored_bytes", { mode: "number" }).notNull(),
    // Plain bytes of the committed chunks (stored bytes x compression ratio).
    logicalWrittenBytes: bigint("logical_written_bytes", { mode: "number" }).notNull(),
    // Bytes NBD clients read / wrote since the engine opened.
    readBytes: bigint("read_bytes", { mode: "number" }).notNull(),
    writtenBytes: bigint("written_bytes", { mode: "number" }).notNull(),
  },
  // "one volume's samples in a time range" is a range scan of the key; the prune is by `at` and rare.
  (t) => [primaryKey({ name: "volume_samples_pkey", columns: [t.volumeId, t.at] }), index("volume_samples_at_idx").on(t.at)],
);

/**
 * Device credentials: how one device of a user attaches over NBD with TLS. Each works as a TLS-PSK
 * identity (the id; the key is derived from the deployment's master key, so it is never stored) and as a
 * client certificate signed by the deployment's NBD CA (only its fingerprint and serial are kept).
 * Nothing here is secret.
 */
export const deviceCredentials = pgTable(
  "device_credentials",
  {
    id: text("id").primaryKey(), // dev_… (also the PSK identity and the certificate's CN)
    // restrict: a user is deleted only after their credentials (as with volumes).
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "restrict" }),
    name: text("name").notNull(),
    // null: every volume of the user, now and later; else the only volume ids this device may list and open.
    volumeIds: jsonb("volume_ids").$type<string[]>(),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
    // Written at most once a minute per credential (a handshake must not always write).
    lastUsedAt: timestamp("last_used_at", { withTimezone: true, mode: "date" }),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    // Lowercase hex SHA-256 of the client certificate's DER: how a presented certificate finds its row.
    certFingerprintSha256: text("cert_fingerprint_sha256").notNull().unique(),
    certSerial: text("cert_serial").notNull(),
  },
  (t) => [
    // A name tells a user's live devices apart; a revoked one frees its name.
    uniqueIndex("device_credentials_user_name_live_idx")
      .on(t.userId, t.name)
      .where(sql`${t.revokedAt} is null`),
    // "a user's credentials, newest first" (the Devices page), and the restrict check on user delete.
    index("device_credentials_user_created_idx").on(t.userId, t.createdAt),
  ],
);

/**
 * Deployment-wide key material kept in the database so every gateway and web process sharing
 * DATABASE_URL and the master key shares it. One row per kind (today: 'nbd-ca'). `sealed_key` is the
 * private key encrypted with a key derived from the master key (AES-256-GCM): useless without it.
 */
export const deploymentKeys = pgTable("deployment_keys", {
  kind: text("kind").primaryKey(),
  certPem: text("cert_pem").notNull(),
  sealedKey: text("sealed_key").notNull(),
  // Lowercase hex SHA-256 of the certificate's DER (shown so users can check what they trust).
  fingerprintSha256: text("fingerprint_sha256").notNull(),
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
});

export const INVITATION_KINDS = ["invite", "setup"] as const;
export type InvitationKind = (typeof INVITATION_KINDS)[number];

/**
 * One-time sign-up tokens for a dashboard where open sign-up is off: an admin's invitation, or the setup
 * token logged at start while no account exists (it can make only the first admin). Single use: an
 * account's creation sets used_at in the same transaction.
 */
export const invitations = pgTable(
  "invitations",
  {
    id: text("id").primaryKey(), // inv_…
    // hex SHA-256 of the token: the token itself is shown once and never stored.
    tokenHash: text("token_hash").notNull().unique(),
    kind: text("kind", { enum: INVITATION_KINDS }).notNull(),
    // The admin who made it (null for setup tokens); cascade: an invitation means nothing without them.
    createdBy: text("created_by").references(() => users.id, { onDelete: "cascade" }),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    usedAt: timestamp("used_at", { withTimezone: true, mode: "date" }),
    usedBy: text("used_by").references(() => users.id, { onDelete: "set null" }),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [check("invitations_kind_valid", sql`${t.kind} in ('invite', 'setup')`)],
);

// "Row" names: packages/storage's Volume is the engine, these are records.
export type UserRow = typeof users.$inferSelect;
export type VolumeRow = typeof volumes.$inferSelect;
export type VolumeChunkRow = typeof volumeChunks.$inferSelect;
export type VolumeGarbageRow = typeof volumeGarbage.$inferSelect;
export type ApiTokenRow = typeof apiTokens.$inferSelect;
export type ActivityRow = typeof activityLog.$inferSelect;
export type VolumeSampleRow = typeof volumeSamples.$inferSelect;
export type DeviceCredentialRow = typeof deviceCredentials.$inferSelect;
export type VolumeLeaseRow = typeof volumeLeases.$inferSelect;
export type DeploymentKeyRow = typeof deploymentKeys.$inferSelect;
export type InvitationRow = typeof invitations.$inferSelect;
export type OrphanSetRow = typeof orphanSets.$inferSelect;
export type VolumeSnapshotRow = typeof volumeSnapshots.$inferSelect;

/**
 * Who may write a volume now: one row per leased volume. Taking a lease raises the volume's fencing
 * token in the same transaction and records it here; every commit checks that token, so a holder that
 * lost its lease (expired, forced out, handed over) can no longer commit. No row: nobody holds it.
 */
export const volumeLeases = pgTable(
  "volume_leases",
  {
    // cascade: a lease means nothing without its volume (delete refuses a live lease first).
    volumeId: text("volume_id")
      .primaryKey()
      .references(() => volumes.id, { onDelete: "cascade" }),
    // Equal to volumes.fencing_token while this lease is the newest.
    fencingToken: bigint("fencing_token", { mode: "number" }).notNull(),
    // The gateway (stable across its restarts) and the process run of it that holds the lease.
    gatewayId: text("gateway_id").notNull(),
    gatewayRun: text("gateway_run").notNull(),
    // The device: a credential id for TLS clients, null for the local admin's plaintext loopback.
    deviceCredentialId: text("device_credential_id"),
    // What the dashboard shows: the device's name (or "local") and the client's address.
    holderName: text("holder_name").notNull(),
    clientAddress: text("client_address"),
    acquiredAt: timestamp("acquired_at", { withTimezone: true, mode: "date" }).notNull(),
    heartbeatAt: timestamp("heartbeat_at", { withTimezone: true, mode: "date" }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
  },
  // "the leases a gateway holds" (its heartbeat renews them in one statement).
  (t) => [index("volume_leases_gateway_idx").on(t.gatewayId, t.gatewayRun)],
);

/**
 * Orphan sets: the uncommitted chunks a gateway kept aside when it lost a volume's lease (another holder
 * took it), in <cache>/orphans/<dir_name>/ on that gateway's disk. They are never committed; a person
 * exports them as a file or discards them. The folder is the truth about the data: this row makes it
 * visible, and a gateway reconciles both at start (folders without rows get rows, its rows without
 * folders go, folders of rows marked discarded are deleted).
 */
export const orphanSets = pgTable(
  "orphan_sets",
  {
    id: text("id").primaryKey(), // orp_…
    // cascade: a deleted volume's orphan sets have nowhere to go (its gateways delete the folders too).
    volumeId: text("volume_id")
      .notNull()
      .references(() => volumes.id, { onDelete: "cascade" }),
    // The gateway (stable id) whose disk holds the folder: only it can export or delete the data.
    gatewayId: text("gateway_id").notNull(),
    // The folder's name under <cache>/orphans/ (`<volumeId>-<token>`, `.N` when one token was orphaned twice).
    dirName: text("dir_name").notNull(),
    // The lease token the data was written under.
    fencingToken: bigint("fencing_token", { mode: "number" }).notNull(),
    // Bytes of the chunk files moved aside (dirty and clean alike), and how many chunks were dirty.
    bytes: bigint("bytes", { mode: "number" }).notNull(),
    dirtyChunks: integer("dirty_chunks").notNull(),
    reason: text("reason").notNull(),
    orphanedAt: timestamp("orphaned_at", { withTimezone: true, mode: "date" }).notNull(),
    // Set by a discard: the row stays until the holding gateway deleted the folder (at once, when it
    // hears the discard on Redis, or at its next start).
    discardedAt: timestamp("discarded_at", { withTimezone: true, mode: "date" }),
    // Who discarded it (a user id), for the activity log and support.
    discardedBy: text("discarded_by"),
    // The last time its data was exported, if ever.
    lastExportedAt: timestamp("last_exported_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [
    // One row per folder: a retried record (or a reconcile racing the fence's own record) is an upsert.
    uniqueIndex("orphan_sets_gateway_dir_idx").on(t.gatewayId, t.dirName),
    // "a volume's orphan sets, newest first" (the volume page), and the cascade on volume delete.
    index("orphan_sets_volume_orphaned_idx").on(t.volumeId, t.orphanedAt),
  ],
);
