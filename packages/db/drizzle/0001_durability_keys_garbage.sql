CREATE TABLE "volume_garbage" (
	"volume_id" text NOT NULL,
	"chunk_index" bigint NOT NULL,
	"generation" bigint NOT NULL,
	"superseded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "volume_garbage_pkey" PRIMARY KEY("volume_id","chunk_index","generation")
);
--> statement-breakpoint
ALTER TABLE "volumes" ADD COLUMN "durability" text DEFAULT 'local' NOT NULL;--> statement-breakpoint
ALTER TABLE "volumes" ADD COLUMN "compression" text DEFAULT 'zstd' NOT NULL;--> statement-breakpoint
ALTER TABLE "volumes" ADD COLUMN "key_slots" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "volumes" ADD COLUMN "last_commit_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "volume_garbage" ADD CONSTRAINT "volume_garbage_volume_id_volumes_id_fk" FOREIGN KEY ("volume_id") REFERENCES "public"."volumes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "volume_garbage_volume_superseded_idx" ON "volume_garbage" USING btree ("volume_id","superseded_at");--> statement-breakpoint
ALTER TABLE "volumes" ADD CONSTRAINT "volumes_durability_valid" CHECK ("volumes"."durability" in ('local', 'cloud'));--> statement-breakpoint
ALTER TABLE "volumes" ADD CONSTRAINT "volumes_compression_valid" CHECK ("volumes"."compression" in ('zstd', 'none'));