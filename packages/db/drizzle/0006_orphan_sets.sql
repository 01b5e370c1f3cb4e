CREATE TABLE "orphan_sets" (
	"id" text PRIMARY KEY NOT NULL,
	"volume_id" text NOT NULL,
	"gateway_id" text NOT NULL,
	"dir_name" text NOT NULL,
	"fencing_token" bigint NOT NULL,
	"bytes" bigint NOT NULL,
	"dirty_chunks" integer NOT NULL,
	"reason" text NOT NULL,
	"orphaned_at" timestamp with time zone NOT NULL,
	"discarded_at" timestamp with time zone,
	"discarded_by" text,
	"last_exported_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "orphan_sets" ADD CONSTRAINT "orphan_sets_volume_id_volumes_id_fk" FOREIGN KEY ("volume_id") REFERENCES "public"."volumes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "orphan_sets_gateway_dir_idx" ON "orphan_sets" USING btree ("gateway_id","dir_name");--> statement-breakpoint
CREATE INDEX "orphan_sets_volume_orphaned_idx" ON "orphan_sets" USING btree ("volume_id","orphaned_at");