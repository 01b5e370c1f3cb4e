CREATE TABLE "volume_leases" (
	"volume_id" text PRIMARY KEY NOT NULL,
	"fencing_token" bigint NOT NULL,
	"gateway_id" text NOT NULL,
	"gateway_run" text NOT NULL,
	"device_credential_id" text,
	"holder_name" text NOT NULL,
	"client_address" text,
	"acquired_at" timestamp with time zone NOT NULL,
	"heartbeat_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "volume_leases" ADD CONSTRAINT "volume_leases_volume_id_volumes_id_fk" FOREIGN KEY ("volume_id") REFERENCES "public"."volumes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "volume_leases_gateway_idx" ON "volume_leases" USING btree ("gateway_id","gateway_run");