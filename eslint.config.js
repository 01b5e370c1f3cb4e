import js from "@eslint/js";
import globals from "globals";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

// One lint setup for the whole tree. The import rules write down the boundaries the package READMEs
// state: packages never import apps, packages/db imports only the chunk-size limits of packages/storage,
// and packages/storage imports no database, web, queue or NBD code.
export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/.next/**", "**/dist/**", ".stratus/**", ".tmp/**", "**/drizzle/meta/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ["**/*.mjs", "**/*.js"], languageOptions: { globals: globals.node } },
  {
    // Type-aware rules for promises: each TypeScript file is checked in the tsconfig that includes it
    // (the root one, or apps/web's); drizzle.config.ts, outside both, gets a default project.
    files: ["**/*.ts", "**/*.tsx", "**/*.mts"],
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["packages/db/drizzle.config.ts"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
  { files: ["apps/web/**/*.ts", "apps/web/**/*.tsx"], ...reactHooks.configs.flat.recommended },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["packages/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["@stratus/nbd-gateway", "@stratus/web", "**/apps/**"], message: "packages never import apps" }] },
      ],
    },
  },
  {
    files: ["packages/db/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["@stratus/nbd-gateway", "@stratus/web", "**/apps/**"], message: "packages never import apps" },
            { regex: "^@stratus/(control|storage(?!/sizes$))", message: "packages/db imports only @stratus/storage/sizes of ours" },
          ],
        },
      ],
    },
  },
  {
    files: ["packages/storage/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["@stratus/db", "@stratus/nbd-gateway", "@stratus/web", "drizzle-orm", "pg", "@electric-sql/*", "bullmq", "ioredis", "next", "**/apps/**"],
              message: "packages/storage is a pure library: no database, queue, web or NBD imports",
            },
          ],
        },
      ],
    },
  },
  {
    // Configuration is parsed once, in each app's env.ts; nothing else reads process.env.
    files: ["apps/**/*.ts", "packages/**/*.ts"],
    ignores: ["**/env.ts", "**/*.test.ts", "**/testing/**"],
    rules: {
      "no-restricted-properties": ["error", { object: "process", property: "env", message: "read configuration in env.ts" }],
    },
  },
  {
    // zod's `z` export is a namespace object the bundler cannot take apart: the CLI's first file then
    // carried every zod export, 45 locales among them (docs/performance.md, "The CLI's start").
    files: ["**/*.ts", "**/*.tsx"],
    rules: {
      "no-restricted-syntax": [
        "error",
        { selector: "ImportDeclaration[source.value='zod'] > ImportSpecifier[imported.name='z']", message: 'write import * as z from "zod"' },
      ],
    },
  },
);
