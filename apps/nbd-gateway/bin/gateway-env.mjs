// Environment the gateway process starts with, for settings that only take effect at a process's
// start: `npm start` (scripts/start.mjs) and the test harness use this; the Dockerfile repeats the
// values in ENV lines.
//
// glibc's malloc keeps up to 256 MiB of freed heap mapped instead of handing it back to the kernel
// at once, and serves allocations under 4 MiB from that heap. node:crypto returns a new buffer for
// every AES-GCM update and V8 frees them in bulk at its next GC; with glibc's defaults that memory went
// back to the kernel and came back one page fault per 4 KiB, which on virtual machines (where a page
// fault can be a trip to the hypervisor) cost the codec threads several times the AES itself. Measured
// on a 512 MiB cold read from s3rver: the gateway's CPU-seconds fell by a fifth to a quarter, and its
// resident memory did not grow measurably (bench/README.md). Other C libraries ignore the variable.
// arena_max=1: every thread allocates from one arena, so what one thread (V8's compilers, a codec
// thread) frees is reused by the others instead of staying in its own arena (docs/performance.md).
export const GATEWAY_MALLOC_TUNABLES =
  "glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=4194304:glibc.malloc.top_pad=16777216:glibc.malloc.arena_max=1";

// V8's young generation: two semi-spaces of up to 16 MiB each by default, both touched within seconds
// of the start. 4 MiB kept ~20 MiB less resident with no cost measured on the warm paths
// (docs/performance.md, "The gateway's memory at rest").
export const GATEWAY_NODE_OPTIONS = "--max-semi-space-size=4";

/** `env` with the gateway's malloc and V8 settings; a GLIBC_TUNABLES or semi-space size the caller set wins. */
export function gatewayProcessEnv(env) {
  const withMalloc = env.GLIBC_TUNABLES === undefined ? { ...env, GLIBC_TUNABLES: GATEWAY_MALLOC_TUNABLES } : env;
  const nodeOptions = withMalloc.NODE_OPTIONS ?? "";
  if (nodeOptions.includes("--max-semi-space-size")) return withMalloc;
  return { ...withMalloc, NODE_OPTIONS: `${nodeOptions} ${GATEWAY_NODE_OPTIONS}`.trim() };
}

/**
 * What the gateway logs when it runs on Linux without GLIBC_TUNABLES (started as bare `stratus
 * gateway`, not through `npm start` or the Docker image), else undefined: glibc reads the variable
 * only when a process starts, so the gateway can only say so.
 */
export function mallocSettingsWarning(env, platform) {
  if (platform !== "linux" || env.GLIBC_TUNABLES !== undefined) return undefined;
  return (
    "GLIBC_TUNABLES is not set, so freed memory goes back to the kernel at once and each chunk sealed or opened " +
    `costs several times the CPU on a virtual machine: start the gateway with GLIBC_TUNABLES=${GATEWAY_MALLOC_TUNABLES} ` +
    "(npm start and the Docker image do)"
  );
}
