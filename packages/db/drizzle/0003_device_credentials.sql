CREATE TABLE "deployment_keys" (
	"kind" text PRIMARY KEY NOT NULL,
	"cert_pem" text NOT NULL,
	"sealed_key" text NOT NULL,
	"fingerprint_sha256" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "device_credentials" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" text NOT NULL,
	"name" text NOT NULL,
	"volume_ids" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"cert_fingerprint_sha256" text NOT NULL,
	"cert_serial" text NOT NULL,
	CONSTRAINT "device_credentials_cert_fingerprint_sha256_unique" UNIQUE("cert_fingerprint_sha256")
);
--> statement-breakpoint
ALTER TABLE "device_credentials" ADD CONSTRAINT "device_credentials_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "device_credentials_user_name_live_idx" ON "device_credentials" USING btree ("user_id","name") WHERE "device_credentials"."revoked_at" is null;--> statement-breakpoint
CREATE INDEX "device_credentials_user_created_idx" ON "device_credentials" USING btree ("user_id","created_at");