#!/usr/bin/env node
// Builds the `stratus` command (CLI and gateway) and the codec worker into plain JavaScript under
// apps/nbd-gateway/dist, so no TypeScript is compiled when it runs. bin/stratus.mjs calls this when
// the build is missing or older than its sources; scripts/test.sh and build-release.sh run it first:
// `node apps/nbd-gateway/bin/build.mjs [--force]`.
//
// The workspace packages (@stratus/*) are TypeScript and are bundled in; every other package stays an
// import resolved from node_modules at run time. Commands import their heavy parts with import(), and
// code splitting turns each into a chunk of its own, so `stratus --help` loads only what it needs.
import { readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BUILD_RECORD, DIST, freshBuild, inputStamp, ROOT } from "./fresh-build.mjs";

/** The command's entry: everything it imports with `import` is bundled into this one file. */
const MAIN = "apps/nbd-gateway/src/cli/main.ts";

/**
 * Modules a command loads with import() (source to output name), each built as an entry of its own. esbuild's
 * code splitting assigns whole files to chunks, and through the packages' index files the CLI's chunk
 * would then hold most of the gateway; built apart, `stratus --help` loads none of it.
 */
const LAZY = {
  "apps/nbd-gateway/src/cli/run-gateway.ts": "gateway",
};

/**
 * Packages the CLI's first file uses, bundled into it (CommonJS among them gets a require of its own):
 * one file loads several times faster than the hundreds of modules zod alone is made of. Any other
 * package is imported from node_modules as usual.
 */
const CLI_BUNDLED = ["commander", "zod", "drizzle-orm", "cli-progress"];

/**
 * Packages bundled into the gateway's chunks: zod loaded from node_modules brings all its exports (45
 * locales among them, a hundred modules) into a gateway that uses a few schemas.
 */
const GATEWAY_BUNDLED = ["zod"];

/** Built with the lazy modules. codec-pool.ts starts its workers from "./codec-worker.mjs" beside itself: this. */
const WORKER = { "codec-worker": "packages/storage/src/codec/codec-worker.ts" };

/**
 * Sources whose import.meta.url must stay the built file's own. Everywhere else it names the source
 * file, whose neighbours (db migrations, the web app's folder) it is used to find.
 */
const OWN_URL = new Set(["packages/storage/src/codec/codec-pool.ts"]);

/** Builds older than this that are not the current one are removed (a running process may still load from one). */
const KEEP_OLD_MS = 24 * 3600_000;

/** Builds into a new folder of dist/ and makes it the current build; returns that folder. */
export async function buildGateway() {
  const { build, stop } = await import("esbuild");
  const name = `build-${Date.now()}-${process.pid}`;
  const outdir = path.join(DIST, name);
  const common = {
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outdir,
    outExtension: { ".js": ".mjs" },
    metafile: true,
    logLevel: "warning",
  };
  const entries = (map) => Object.fromEntries(Object.entries(map).map(([out, source]) => [out, path.join(ROOT, source)]));
  const lazyEntries = Object.fromEntries(Object.entries(LAZY).map(([source, out]) => [out, source]));
  // stop(): esbuild's service process would otherwise stay beside the command for as long as it runs.
  const results = await Promise.all([
    build({
      ...common,
      entryPoints: entries({ main: MAIN }),
      // Less text for V8 to compile at each run; names are kept for readable stack traces.
      minifyWhitespace: true,
      minifySyntax: true,
      banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
      plugins: [workspaceOnly({ lazyApart: true, bundled: CLI_BUNDLED }), sourceUrls(outdir)],
    }),
    build({
      ...common,
      entryPoints: entries({ ...lazyEntries, ...WORKER }),
      splitting: true,
      chunkNames: "chunk-[hash]",
      plugins: [workspaceOnly({ lazyApart: false, bundled: GATEWAY_BUNDLED }), sourceUrls(outdir)],
    }),
  ]).finally(() => stop());
  const built = results.flatMap((result) => Object.keys(result.metafile.inputs));
  // Bundled packages change only with an install, which rewrites the lock file: one stat instead of hundreds.
  const ours = built.filter((input) => !input.split("/").includes("node_modules"));
  const inputs = [...new Set(ours), "package-lock.json", path.relative(ROOT, fileURLToPath(import.meta.url)), "apps/nbd-gateway/bin/fresh-build.mjs"];
  const record = { folder: name, inputs: Object.fromEntries(inputs.map((input) => [input, inputStamp(input)])) };
  const temporary = `${BUILD_RECORD}.${process.pid}`;
  writeFileSync(temporary, `${JSON.stringify(record)}\n`);
  renameSync(temporary, BUILD_RECORD);
  removeOldBuilds(name);
  return outdir;
}

/** Bundles our workspace packages (and `bundled`) and leaves every other package to node_modules at run time. */
function workspaceOnly({ lazyApart, bundled }) {
  const bundle = (specifier) => specifier.startsWith("@stratus/") || bundled.some((name) => specifier === name || specifier.startsWith(`${name}/`));
  return {
    name: "workspace-only",
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => (bundle(args.path) ? undefined : { external: true }));
      // Our modules run nothing at import that another module needs, so an unused one is left out:
      // that keeps the CLI's first chunk free of the gateway's dependencies.
      build.onResolve({ filter: /^[./]|^@stratus\// }, async (args) => {
        if (args.pluginData?.resolving) return undefined;
        const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: { resolving: true } });
        if (resolved.errors.length > 0 || resolved.external) return resolved;
        const lazy = LAZY[path.relative(ROOT, resolved.path)];
        if (lazyApart && lazy !== undefined) return { path: `./${lazy}.mjs`, external: true };
        return { ...resolved, sideEffects: !isWorkspaceSource(resolved.path) };
      });
    },
  };
}

/** import.meta.url in a bundled source names that source file (see OWN_URL), relative to the build folder. */
function sourceUrls(outdir) {
  return {
    name: "source-urls",
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (!isWorkspaceSource(args.path)) return undefined;
        const text = await readFile(args.path, "utf8");
        const relative = path.relative(ROOT, args.path);
        if (!text.includes("import.meta.url") || OWN_URL.has(relative)) return { contents: text, loader: "ts" };
        const fromBuild = JSON.stringify(path.relative(outdir, args.path));
        return { contents: text.replaceAll("import.meta.url", `new URL(${fromBuild}, import.meta.url).href`), loader: "ts" };
      });
    },
  };
}

function isWorkspaceSource(file) {
  const relative = path.relative(ROOT, file);
  return !relative.startsWith("..") && !relative.split(path.sep).includes("node_modules");
}

function removeOldBuilds(current) {
  const now = Date.now();
  for (const entry of readdirSync(DIST)) {
    if (!entry.startsWith("build-") || entry === current) continue;
    const folder = path.join(DIST, entry);
    const stat = statSync(folder, { throwIfNoEntry: false });
    if (stat?.isDirectory() && now - stat.mtimeMs > KEEP_OLD_MS) rmSync(folder, { recursive: true, force: true });
  }
}

// As a script: builds when the build is missing or stale (always with --force).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const current = process.argv.includes("--force") ? undefined : freshBuild();
  const outdir = current ?? (await buildGateway());
  process.stdout.write(`${current ? "up to date" : "built"}: ${path.relative(process.cwd(), outdir)}\n`);
}
