CREATE TABLE "snapshot_chunks" (
	"snapshot_id" text NOT NULL,
	"chunk_index" bigint NOT NULL,
	"generation" bigint NOT NULL,
	"stored_size" integer NOT NULL,
	"owner_volume_id" text NOT NULL,
	CONSTRAINT "snapshot_chunks_pkey" PRIMARY KEY("snapshot_id","chunk_index")
);
--> statement-breakpoint
CREATE TABLE "volume_snapshots" (
	"id" text PRIMARY KEY NOT NULL,
	"volume_id" text NOT NULL,
	"name" text NOT NULL,
	"epoch" bigint NOT NULL,
	"size_bytes" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "volume_snapshots_volume_name_unique" UNIQUE("volume_id","name"),
	CONSTRAINT "volume_snapshots_name_format" CHECK ("volume_snapshots"."name" ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$')
);
--> statement-breakpoint
ALTER TABLE "volume_chunks" ADD COLUMN "owner_volume_id" text;--> statement-breakpoint
ALTER TABLE "volume_garbage" ADD COLUMN "owner_volume_id" text;--> statement-breakpoint
ALTER TABLE "volumes" ADD COLUMN "inherited_keys" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "volumes" ADD COLUMN "cloned_from" jsonb;--> statement-breakpoint
ALTER TABLE "snapshot_chunks" ADD CONSTRAINT "snapshot_chunks_snapshot_id_volume_snapshots_id_fk" FOREIGN KEY ("snapshot_id") REFERENCES "public"."volume_snapshots"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volume_snapshots" ADD CONSTRAINT "volume_snapshots_volume_id_volumes_id_fk" FOREIGN KEY ("volume_id") REFERENCES "public"."volumes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "snapshot_chunks_owner_idx" ON "snapshot_chunks" USING btree ("owner_volume_id","chunk_index","generation");--> statement-breakpoint
CREATE INDEX "volume_chunks_owner_idx" ON "volume_chunks" USING btree ("owner_volume_id","chunk_index","generation") WHERE "volume_chunks"."owner_volume_id" is not null;