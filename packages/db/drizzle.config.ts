import { defineConfig } from "drizzle-kit";

// Only `drizzle-kit generate` uses this file (it needs no database): migrations are applied by
// openDatabase() through drizzle's migrate(), on PGlite and PostgreSQL alike. Never `push`.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/schema.ts",
  out: "./drizzle",
});
