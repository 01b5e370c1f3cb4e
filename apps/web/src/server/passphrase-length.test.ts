/**
 * New passphrases (create, passwd) need MIN_PASSPHRASE_LENGTH characters, with a message naming the field
 * through REST and tRPC alike.
 */
import { MIN_PASSPHRASE_LENGTH } from "@stratus/control";
import { describe, expect, it } from "vitest";
import * as volumesRoute from "@/app/api/v1/volumes/route";
import * as passphraseRoute from "@/app/api/v1/volumes/[name]/passphrase/route";
import { contextFromRequest } from "./context";
import { appRouter } from "./root-router";
import { makeRequest, useSignedInUser } from "./testing";

describe("passphrase minimum length", () => {
  const user = useSignedInUser("p@example.com");

  it("is 12, refused with a clear message naming the field (REST and tRPC)", async () => {
    expect(MIN_PASSPHRASE_LENGTH).toBe(12);
    const short = "x".repeat(MIN_PASSPHRASE_LENGTH - 1);
    const rest = await volumesRoute.POST(makeRequest(user().caller, "POST", "/api/v1/volumes", { name: "short", size: "1M", passphrase: short }));
    expect(rest.status).toBe(400);
    expect(await rest.json()).toEqual({
      error: { code: "BAD_REQUEST", message: "passphrase: the passphrase needs at least 12 characters", field: "passphrase" },
    });
    const trpc = appRouter.createCaller(await contextFromRequest(makeRequest(user().caller, "POST", "/api/trpc")));
    await expect(trpc.volume.create({ name: "short", size: "1M", passphrase: short })).rejects.toThrow(/at least 12 characters/);

    const good = "y".repeat(MIN_PASSPHRASE_LENGTH);
    expect(
      (await volumesRoute.POST(makeRequest(user().caller, "POST", "/api/v1/volumes", { name: "ok", size: "1M", chunkSize: "64K", passphrase: good }))).status,
    ).toBe(201);
    const params = { params: Promise.resolve({ name: "ok" }) };
    const passwd = await passphraseRoute.POST(
      makeRequest(user().caller, "POST", "/api/v1/volumes/ok/passphrase", { oldPassphrase: good, newPassphrase: short }),
      params,
    );
    expect(passwd.status).toBe(400);
    expect(((await passwd.json()) as { error: { field: string } }).error.field).toBe("newPassphrase");
  });
});
