/**
 * The control API the CLI (and scripts) use: a small REST surface on the web port.
 *
 *   GET    /api/v1/health                     -> { ok: true }                       (no token needed)
 *   GET    /api/v1/volumes                    -> { volumes: VolumeView[] }
 *   POST   /api/v1/volumes                    <- { name, size: "10G" | bytes, chunkSize?, durability?, passphrase?, autoUnlock? } -> 201 VolumeView
 *   POST   /api/v1/volumes/:name/unlock       <- { passphrase } -> VolumeView
 *   POST   /api/v1/volumes/:name/passwd       <- { oldPassphrase?, newPassphrase } -> VolumeView
 *   DELETE /api/v1/volumes/:name              -> 202 { volumeId, jobId }
 *   GET    /api/v1/volume-deletions/:volumeId -> { state, objectsDeleted, error? }
 *   POST   /api/v1/volumes/recover            <- { passphrase? } -> { recovered, skipped }
 *
 * Passphrases travel only in request bodies (never the URL), and bodies are never logged.
 *
 * Every /api route but health needs `Authorization: Bearer <token>`. Errors are JSON
 * { error: { code, message, field? } }; internal failures are logged and answered with a generic
 * message, never a stack trace. Handlers only validate, call a verb and map its error.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { renderPlaceholderPage } from "@stratus/web/placeholder";
import type { Logger } from "pino";
import { z } from "zod";
import { parseSize } from "../config/units";
import type { TokenVerifier } from "./cli-token";
import { HTTP_STATUS, ServiceError } from "./service-error";
import {
  changeVolumePassphrase,
  createVolume,
  deleteVolume,
  listVolumes,
  recoverVolumes,
  unlockVolume,
  volumeDeleteProgress,
  type ControlContext,
} from "./volume-verbs";

const MAX_BODY_BYTES = 64 * 1024;

const sizeInput = z.union([z.number().int().positive(), z.string()]).transform((value, ctx) => {
  if (typeof value === "number") return value;
  try {
    return parseSize(value);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
    return z.NEVER;
  }
});

const passphrase = z.string().min(1, "the passphrase is empty").max(1024);

const createVolumeInput = z.object({
  name: z.string().min(1).max(64),
  size: sizeInput,
  chunkSize: sizeInput.optional(),
  durability: z.enum(["local", "cloud"]).optional(),
  passphrase: passphrase.optional(),
  autoUnlock: z.boolean().optional(),
});
const unlockInput = z.object({ passphrase });
const passwdInput = z.object({ oldPassphrase: passphrase.optional(), newPassphrase: passphrase });
const recoverInput = z.object({ passphrase: passphrase.optional() });

export interface HttpApiOptions {
  context: Omit<ControlContext, "ownerId">;
  ownerId: string;
  tokens: TokenVerifier;
  logger: Logger;
  nbdUrl: string;
}

export function createHttpApi(options: HttpApiOptions): Server {
  const server = createServer((req, res) => {
    handle(options, req, res).catch((error: unknown) => sendError(options.logger, res, error));
  });
  server.keepAliveTimeout = 5_000;
  return server;
}

async function handle(options: HttpApiOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const method = req.method ?? "GET";

  if (url.pathname === "/" && method === "GET") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
    res.end(renderPlaceholderPage({ nbdUrl: options.nbdUrl }));
    return;
  }
  if (url.pathname === "/api/v1/health" && method === "GET") {
    return sendJson(res, 200, { ok: true });
  }
  if (!url.pathname.startsWith("/api/")) {
    throw new ServiceError("NOT_FOUND", `no page at ${url.pathname}`);
  }

  if (!options.tokens.verify(bearerToken(req))) {
    throw new ServiceError("UNAUTHORIZED", "missing or invalid token (set STRATUS_TOKEN, or run the CLI on the server's machine)");
  }
  const ctx: ControlContext = { ...options.context, ownerId: options.ownerId };

  if (url.pathname === "/api/v1/volumes") {
    if (method === "GET") return sendJson(res, 200, { volumes: await listVolumes(ctx) });
    if (method === "POST") {
      const input = parse(createVolumeInput, await readJson(req));
      const volume = await createVolume(ctx, {
        name: input.name,
        sizeBytes: input.size,
        chunkSize: input.chunkSize,
        durability: input.durability,
        passphrase: input.passphrase,
        autoUnlock: input.autoUnlock,
      });
      return sendJson(res, 201, volume);
    }
  }
  if (url.pathname === "/api/v1/volumes/recover" && method === "POST") {
    return sendJson(res, 200, await recoverVolumes(ctx, parse(recoverInput, await readJson(req))));
  }
  const action = /^\/api\/v1\/volumes\/([^/]+)\/(unlock|passwd)$/.exec(url.pathname);
  if (action && method === "POST") {
    const name = decodeURIComponent(action[1]!);
    if (action[2] === "unlock") return sendJson(res, 200, await unlockVolume(ctx, { name, ...parse(unlockInput, await readJson(req)) }));
    return sendJson(res, 200, await changeVolumePassphrase(ctx, { name, ...parse(passwdInput, await readJson(req)) }));
  }
  const match = /^\/api\/v1\/volumes\/([^/]+)$/.exec(url.pathname);
  if (match && method === "DELETE") {
    return sendJson(res, 202, await deleteVolume(ctx, { name: decodeURIComponent(match[1]!) }));
  }
  const deletion = /^\/api\/v1\/volume-deletions\/([^/]+)$/.exec(url.pathname);
  if (deletion && method === "GET") {
    return sendJson(res, 200, await volumeDeleteProgress(ctx, { volumeId: decodeURIComponent(deletion[1]!) }));
  }
  throw new ServiceError("NOT_FOUND", `no route ${method} ${url.pathname}`);
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith("Bearer ") ? header.slice("Bearer ".length).trim() : undefined;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const part of req) {
    total += (part as Buffer).length;
    if (total > MAX_BODY_BYTES) throw new ServiceError("BAD_REQUEST", "request body too large");
    parts.push(part as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    throw new ServiceError("BAD_REQUEST", "request body is not valid JSON");
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.join(".") || undefined;
  throw new ServiceError("BAD_REQUEST", field ? `${field}: ${issue.message}` : issue.message, { field });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** The one place errors become HTTP answers. */
function sendError(logger: Logger, res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof ServiceError) {
    sendJson(res, HTTP_STATUS[error.code], { error: { code: error.code, message: error.message, field: error.field } });
    return;
  }
  logger.error({ err: error }, "control API request failed");
  sendJson(res, 500, { error: { code: "INTERNAL", message: "internal error; see the server log" } });
}
