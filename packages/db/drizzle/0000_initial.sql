CREATE TABLE "users" (
	"id" text PRIMARY KEY NOT NULL,
	"email" text NOT NULL,
	"password_hash" text,
	"is_admin" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_email_unique" UNIQUE("email")
);
--> statement-breakpoint
CREATE TABLE "volume_chunks" (
	"volume_id" text NOT NULL,
	"chunk_index" bigint NOT NULL,
	"generation" bigint NOT NULL,
	"stored_size" integer NOT NULL,
	CONSTRAINT "volume_chunks_pkey" PRIMARY KEY("volume_id","chunk_index")
);
--> statement-breakpoint
CREATE TABLE "volumes" (
	"id" text PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"name" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"chunk_size" integer NOT NULL,
	"state" text DEFAULT 'active' NOT NULL,
	"commit_epoch" bigint DEFAULT 0 NOT NULL,
	"fencing_token" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "volumes_owner_id_name_unique" UNIQUE("owner_id","name"),
	CONSTRAINT "volumes_name_format" CHECK ("volumes"."name" ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
	CONSTRAINT "volumes_state_valid" CHECK ("volumes"."state" in ('active', 'deleting')),
	CONSTRAINT "volumes_size_positive" CHECK ("volumes"."size_bytes" > 0 and "volumes"."chunk_size" > 0)
);
--> statement-breakpoint
ALTER TABLE "volume_chunks" ADD CONSTRAINT "volume_chunks_volume_id_volumes_id_fk" FOREIGN KEY ("volume_id") REFERENCES "public"."volumes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "volumes" ADD CONSTRAINT "volumes_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE restrict ON UPDATE no action;