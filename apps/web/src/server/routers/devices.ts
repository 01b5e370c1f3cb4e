/**
 * Device credentials for NBD over TLS (one per machine that attaches volumes) and the deployment CA.
 * `create` returns the secret once, with the credential folder's files ready for a download.
 */
import {
  createDeviceCredential,
  createDeviceCredentialInput,
  deviceAttachCommands,
  deviceAttachCommandsInput,
  deviceFiles,
  deviceFolderName,
  getNbdCa,
  listDeviceCredentials,
  revokeDeviceCredential,
} from "@stratus/control";
import * as z from "zod";
import { authedProcedure, router } from "../trpc";

export const devicesRouter = router({
  list: authedProcedure.query(({ ctx }) => listDeviceCredentials(ctx.service)),
  /** { credential, secret, folder, files }: shown or downloaded once, never again. */
  create: authedProcedure.input(createDeviceCredentialInput).mutation(async ({ ctx, input }) => {
    const created = await createDeviceCredential(ctx.service, input);
    return { ...created, folder: deviceFolderName(created.credential.name), files: deviceFiles(created.secret) };
  }),
  revoke: authedProcedure.input(z.object({ id: z.string().min(1).max(64) })).mutation(({ ctx, input }) => revokeDeviceCredential(ctx.service, input)),
  /** The deployment CA's certificate (public) and its SHA-256 fingerprint. */
  ca: authedProcedure.query(({ ctx }) => getNbdCa(ctx.runtime)),
  attachCommands: authedProcedure.input(deviceAttachCommandsInput).query(({ ctx, input }) => deviceAttachCommands(ctx.service, input)),
});
