/**
 * Snapshots and clones in the database (docs/snapshots-design.md). A snapshot copies the volume's
 * chunk map at its current epoch into snapshot_chunks in one transaction: no object is written. A
 * clone is a new volume whose map starts as a snapshot's, each row naming the ancestor that owns the
 * object until the clone rewrites that chunk. The GC counts these rows as references (garbage.ts).
 */
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { executeRows, type Db } from "./client";
import { DbError } from "./errors";
import { objectReferenced } from "./garbage";
import { snapshotChunks, volumeSnapshots, volumes, type VolumeRow, type VolumeSnapshotRow } from "./schema";
import { insertVolume, type NewVolume } from "./volumes";

/** One object a snapshot or map names: whose prefix it is under, and what it costs. */
export interface OwnedChunk {
  generation: number;
  storedSize: number;
  /** The volume whose prefix holds the object. */
  owner: string;
}

export interface SnapshotFigures {
  /** Chunk objects it names, and their stored bytes. */
  chunks: number;
  storedBytes: number;
  /** Stored bytes of the objects only it names: what deleting it frees. */
  exclusiveBytes: number;
}

export type SnapshotWithFigures = VolumeSnapshotRow & SnapshotFigures;

/**
 * Pins the volume's committed map as snapshot `name`: one transaction reads the epoch and copies the
 * rows, so a commit landing meanwhile is either wholly in it or wholly not. A taken name ->
 * SNAPSHOT_EXISTS.
 */
export async function createSnapshotRow(db: Db, input: { id: string; volumeId: string; name: string }): Promise<VolumeSnapshotRow> {
  return db.transaction(
    async (tx) => {
      const [volume] = await tx.select({ epoch: volumes.commitEpoch, sizeBytes: volumes.sizeBytes }).from(volumes).where(eq(volumes.id, input.volumeId));
      if (!volume) throw new DbError("VOLUME_NOT_FOUND", `no volume with id ${input.volumeId}`);
      const [row] = await tx
        .insert(volumeSnapshots)
        .values({ id: input.id, volumeId: input.volumeId, name: input.name, epoch: volume.epoch, sizeBytes: volume.sizeBytes })
        .onConflictDoNothing({ target: [volumeSnapshots.volumeId, volumeSnapshots.name] })
        .returning();
      if (!row) throw new DbError("SNAPSHOT_EXISTS", `the volume already has a snapshot named ${JSON.stringify(input.name)}`);
      await tx.execute(sql`insert into snapshot_chunks (snapshot_id, chunk_index, generation, stored_size, owner_volume_id)
        select ${input.id}, chunk_index, generation, stored_size, coalesce(owner_volume_id, volume_id)
        from volume_chunks where volume_id = ${input.volumeId}`);
      return row;
    },
    { isolationLevel: "repeatable read" },
  );
}

export async function findSnapshotByName(db: Db, volumeId: string, name: string): Promise<VolumeSnapshotRow | undefined> {
  const [row] = await db
    .select()
    .from(volumeSnapshots)
    .where(and(eq(volumeSnapshots.volumeId, volumeId), eq(volumeSnapshots.name, name)));
  return row;
}

export async function findSnapshotById(db: Db, id: string): Promise<VolumeSnapshotRow | undefined> {
  const [row] = await db.select().from(volumeSnapshots).where(eq(volumeSnapshots.id, id));
  return row;
}

/** The volume's snapshots, oldest first, with what each names and what only it holds. */
export async function listSnapshots(db: Db, volumeId: string): Promise<SnapshotWithFigures[]> {
  const rows = await db.select().from(volumeSnapshots).where(eq(volumeSnapshots.volumeId, volumeId)).orderBy(asc(volumeSnapshots.createdAt));
  if (rows.length === 0) return [];
  // "Only it": no map (this volume's, a clone's) and no other snapshot names the object.
  const figures = await executeRows<{ snapshot_id: string; chunks: string | number; stored: string | number; exclusive: string | number }>(
    db,
    sql`select s.snapshot_id, count(*) as chunks, coalesce(sum(s.stored_size), 0) as stored,
          coalesce(sum(s.stored_size) filter (where not exists (
            select 1 from snapshot_chunks o where o.owner_volume_id = s.owner_volume_id and o.chunk_index = s.chunk_index
              and o.generation = s.generation and o.snapshot_id <> s.snapshot_id)
            and not exists (select 1 from volume_chunks c where c.volume_id = s.owner_volume_id and c.owner_volume_id is null
              and c.chunk_index = s.chunk_index and c.generation = s.generation)
            and not exists (select 1 from volume_chunks c where c.owner_volume_id = s.owner_volume_id
              and c.chunk_index = s.chunk_index and c.generation = s.generation)), 0) as exclusive
        from snapshot_chunks s join volume_snapshots v on v.id = s.snapshot_id
        where v.volume_id = ${volumeId} group by s.snapshot_id`,
  );
  const byId = new Map(figures.map((f) => [f.snapshot_id, f]));
  return rows.map((row) => {
    const f = byId.get(row.id);
    return { ...row, chunks: Number(f?.chunks ?? 0), storedBytes: Number(f?.stored ?? 0), exclusiveBytes: Number(f?.exclusive ?? 0) };
  });
}

/** Snapshots per volume id (how many), for listings. */
export async function countSnapshots(db: Db, volumeIds: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (volumeIds.length === 0) return out;
  const rows = await executeRows<{ volume_id: string; n: string | number }>(
    db,
    sql`select volume_id, count(*) as n from volume_snapshots where volume_id = any(${sql.param([...volumeIds])}::text[]) group by volume_id`,
  );
  for (const row of rows) out.set(row.volume_id, Number(row.n));
  return out;
}

/** The snapshot's map (index -> object), paged like loadChunkMap. */
export async function loadSnapshotMap(db: Db, snapshotId: string): Promise<Map<number, OwnedChunk>> {
  const chunks = new Map<number, OwnedChunk>();
  let after = -1;
  for (;;) {
    const page = await db
      .select({
        index: snapshotChunks.chunkIndex,
        generation: snapshotChunks.generation,
        storedSize: snapshotChunks.storedSize,
        owner: snapshotChunks.ownerVolumeId,
      })
      .from(snapshotChunks)
      .where(and(eq(snapshotChunks.snapshotId, snapshotId), gt(snapshotChunks.chunkIndex, after)))
      .orderBy(asc(snapshotChunks.chunkIndex))
      .limit(50_000);
    for (const row of page) chunks.set(row.index, { generation: row.generation, storedSize: row.storedSize, owner: row.owner });
    if (page.length < 50_000) break;
    after = page[page.length - 1]!.index;
  }
  return chunks;
}

/**
 * Deletes the snapshot. What only it named becomes garbage of its volume in the same transaction
 * (superseded now, so the GC takes it after the grace); what something else still names stays.
 */
export async function deleteSnapshotRow(db: Db, snapshotId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [snapshot] = await tx.select().from(volumeSnapshots).where(eq(volumeSnapshots.id, snapshotId)).for("update");
    if (!snapshot) return false;
    const named = await loadSnapshotMap(tx, snapshotId);
    await tx.delete(volumeSnapshots).where(eq(volumeSnapshots.id, snapshotId)); // its rows go by cascade
    const entries = [...named];
    for (let start = 0; start < entries.length; start += 50_000) {
      const batch = entries.slice(start, start + 50_000);
      // After the delete, "referenced" means by something else: a map or another snapshot.
      await tx.execute(sql`insert into volume_garbage (volume_id, chunk_index, generation, superseded_at, owner_volume_id)
        select ${snapshot.volumeId}, g.i, g.gen, now(), nullif(g.owner, ${snapshot.volumeId})
        from unnest(${sql.param(batch.map(([index]) => index))}::bigint[],
                    ${sql.param(batch.map(([, chunk]) => chunk.generation))}::bigint[],
                    ${sql.param(batch.map(([, chunk]) => chunk.owner))}::text[]) as g(i, gen, owner)
        where not ${objectReferenced(sql`g.owner`, sql`g.i`, sql`g.gen`)}
        on conflict do nothing`);
    }
    return true;
  });
}

/**
 * Creates a clone: a new volume row at the snapshot's epoch (its own first commit is epoch + 1, so
 * its generations never equal an inherited one) whose map is the snapshot's, every row naming the
 * object's owner. One transaction: the clone exists whole or not at all.
 */
export async function insertCloneVolume(db: Db, input: NewVolume, snapshotId: string): Promise<VolumeRow> {
  return db.transaction(async (tx) => {
    const [snapshot] = await tx.select().from(volumeSnapshots).where(eq(volumeSnapshots.id, snapshotId)).for("share");
    if (!snapshot) throw new DbError("SNAPSHOT_NOT_FOUND", `no snapshot with id ${snapshotId}`);
    const row = await insertVolume(tx, input);
    const [moved] = await tx.update(volumes).set({ commitEpoch: snapshot.epoch }).where(eq(volumes.id, row.id)).returning();
    await tx.execute(sql`insert into volume_chunks (volume_id, chunk_index, generation, stored_size, owner_volume_id)
      select ${row.id}, chunk_index, generation, stored_size, owner_volume_id from snapshot_chunks where snapshot_id = ${snapshotId}`);
    return moved!;
  });
}

/**
 * `${index}:${generation}` of the volume's objects that other volumes still read: clones' maps, and
 * snapshots of clones. Deleting the volume must keep these (their readers' GC deletes them later).
 */
export async function objectsReadByOthers(db: Db, volumeId: string): Promise<Set<string>> {
  const rows = await executeRows<{ index: string | number; generation: string | number }>(
    db,
    sql`select chunk_index as index, generation from volume_chunks where owner_volume_id = ${volumeId}
        union select s.chunk_index, s.generation from snapshot_chunks s join volume_snapshots v on v.id = s.snapshot_id
          where s.owner_volume_id = ${volumeId} and v.volume_id <> ${volumeId}`,
  );
  return new Set(rows.map((row) => `${Number(row.index)}:${Number(row.generation)}`));
}

export interface RecoveredSnapshot {
  id: string;
  volumeId: string;
  name: string;
  epoch: number;
  sizeBytes: number;
  createdAt: Date;
  /** [index, generation, storedSize, owner] */
  chunks: readonly (readonly [number, number, number, string])[];
}

/** Puts back a snapshot read from the bucket (s/ manifest), whole or not at all; a taken id or name -> SNAPSHOT_EXISTS. */
export async function insertRecoveredSnapshot(db: Db, input: RecoveredSnapshot): Promise<void> {
  await db.transaction(async (tx) => {
    const [row] = await tx
      .insert(volumeSnapshots)
      .values({ id: input.id, volumeId: input.volumeId, name: input.name, epoch: input.epoch, sizeBytes: input.sizeBytes, createdAt: input.createdAt })
      .onConflictDoNothing()
      .returning();
    if (!row) throw new DbError("SNAPSHOT_EXISTS", `snapshot ${input.id} (${JSON.stringify(input.name)}) already exists`);
    for (let start = 0; start < input.chunks.length; start += 50_000) {
      const batch = input.chunks.slice(start, start + 50_000);
      await tx.execute(sql`insert into snapshot_chunks (snapshot_id, chunk_index, generation, stored_size, owner_volume_id)
        select ${input.id}, u.* from unnest(
          ${sql.param(batch.map(([index]) => index))}::bigint[],
          ${sql.param(batch.map(([, generation]) => generation))}::bigint[],
          ${sql.param(batch.map(([, , storedSize]) => storedSize))}::integer[],
          ${sql.param(batch.map(([, , , owner]) => owner))}::text[]) as u`);
    }
  });
}
