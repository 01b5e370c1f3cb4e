import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { GATEWAY_MALLOC_TUNABLES, GATEWAY_NODE_OPTIONS, gatewayProcessEnv, mallocSettingsWarning } from "../../bin/gateway-env.mjs";

describe("the gateway process's environment (bin/gateway-env.mjs)", () => {
  it("adds the malloc settings, and a GLIBC_TUNABLES the caller set wins", () => {
    expect(gatewayProcessEnv({ PATH: "/bin" })).toEqual({ PATH: "/bin", GLIBC_TUNABLES: GATEWAY_MALLOC_TUNABLES, NODE_OPTIONS: GATEWAY_NODE_OPTIONS });
    expect(gatewayProcessEnv({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }).GLIBC_TUNABLES).toBe("glibc.malloc.arena_max=2");
  });

  it("adds V8's semi-space size to the caller's NODE_OPTIONS, unless they set one", () => {
    expect(gatewayProcessEnv({ NODE_OPTIONS: "--enable-source-maps" }).NODE_OPTIONS).toBe(`--enable-source-maps ${GATEWAY_NODE_OPTIONS}`);
    expect(gatewayProcessEnv({ NODE_OPTIONS: "--max-semi-space-size=16" }).NODE_OPTIONS).toBe("--max-semi-space-size=16");
  });

  it("is what the Docker image sets too (the Dockerfile cannot import it)", () => {
    const dockerfile = readFileSync(new URL("../../../../Dockerfile", import.meta.url), "utf8");
    expect(dockerfile).toContain(`ENV GLIBC_TUNABLES=${GATEWAY_MALLOC_TUNABLES}\n`);
    expect(dockerfile).toContain(`ENV NODE_OPTIONS=${GATEWAY_NODE_OPTIONS}\n`);
  });

  it("a gateway on Linux started without them says so, with the value to set; with any value, or elsewhere, it does not", () => {
    expect(mallocSettingsWarning({ PATH: "/bin" }, "linux")).toContain(`GLIBC_TUNABLES=${GATEWAY_MALLOC_TUNABLES}`);
    expect(mallocSettingsWarning({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }, "linux")).toBeUndefined();
    expect(mallocSettingsWarning({}, "darwin")).toBeUndefined();
  });
});
