/**
 * The API the pages are written against, as types, from docs/control-plane-design.md. The real
 * router is apps/web/src/server/root-router.ts; this stand-in lets the front end typecheck while it
 * is being built. (Type-level only: nothing here runs.)
 */
import { initTRPC } from "@trpc/server";
import superjson from "superjson";
import { z } from "zod";

const t = initTRPC.create({ transformer: superjson });
const stub = <T>() => null as unknown as T;

interface Attached {
  gatewayId: string;
  connections: number;
  attachedSince: Date | null;
  clients: string[];
}
interface VolumeView {
  id: string;
  name: string;
  sizeBytes: number;
  chunkSize: number;
  state: string;
  durability: "local" | "cloud";
  compression: "zstd" | "none";
  createdAt: Date;
  autoUnlock: boolean;
  hasPassphrase: boolean;
  unlocked: boolean;
  storedBytes: number | null;
  compressionRatio: number | null;
  dirtyBytes: number | null;
  lastCommitAt: Date | null;
  attached: Attached | null;
}
interface TokenView {
  id: string;
  name: string;
  prefix: string;
  scope: "read" | "write";
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}
const name = z.object({ name: z.string() });

export const contractRouter = t.router({
  account: t.router({
    me: t.procedure.query(() => stub<{ id: string; email: string; isAdmin: boolean }>()),
    signUp: t.procedure.input(z.object({ email: z.string(), password: z.string() })).mutation(() => stub<{ id: string; email: string }>()),
  }),
  volume: t.router({
    list: t.procedure.query(() => stub<VolumeView[]>()),
    get: t.procedure.input(name).query(() => stub<VolumeView>()),
    create: t.procedure
      .input(
        z.object({
          name: z.string(),
          sizeBytes: z.number(),
          chunkSize: z.number().optional(),
          compression: z.enum(["zstd", "none"]).optional(),
          durability: z.enum(["local", "cloud"]).optional(),
          passphrase: z.string().optional(),
          autoUnlock: z.boolean().optional(),
        }),
      )
      .mutation(() => stub<VolumeView>()),
    resize: t.procedure.input(z.object({ name: z.string(), sizeBytes: z.number(), confirmShrink: z.boolean().optional() })).mutation(() => stub<VolumeView>()),
    changePassphrase: t.procedure
      .input(z.object({ name: z.string(), oldPassphrase: z.string().optional(), newPassphrase: z.string() }))
      .mutation(() => stub<VolumeView>()),
    unlock: t.procedure.input(z.object({ name: z.string(), passphrase: z.string() })).mutation(() => stub<VolumeView>()),
    lock: t.procedure.input(name).mutation(() => stub<VolumeView>()),
    delete: t.procedure.input(z.object({ name: z.string(), confirm: z.string() })).mutation(() => stub<{ volumeId: string }>()),
    deleteProgress: t.procedure
      .input(name)
      .query(() => stub<{ volumeId: string; state: "waiting" | "active" | "completed" | "failed"; objectsDeleted: number }>()),
    activity: t.procedure
      .input(name)
      .query(() => stub<{ id: number; action: string; via: string; detail: Record<string, unknown>; at: Date }[]>()),
    metrics: t.procedure
      .input(z.object({ name: z.string(), minutes: z.number() }))
      .query(() => stub<{ samples: { at: Date; storedBytes: number; readBytes: number; writtenBytes: number }[] }>()),
    attachCommands: t.procedure.input(name).query(() => stub<{ id: string; label: string; command: string; note?: string }[]>()),
  }),
  token: t.router({
    list: t.procedure.query(() => stub<TokenView[]>()),
    create: t.procedure
      .input(z.object({ name: z.string(), scope: z.enum(["read", "write"]), expiresAt: z.date().optional() }))
      .mutation(() => stub<{ token: TokenView; secret: string }>()),
    revoke: t.procedure.input(z.object({ id: z.string() })).mutation(() => stub<TokenView>()),
  }),
});

export type ContractRouter = typeof contractRouter;
