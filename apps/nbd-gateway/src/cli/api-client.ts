/**
 * The CLI's side of the control API: one small HTTP wrapper that turns every failure into a
 * sentence (server not running, bad token, the server's own error message).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { ClientConfig } from "../config/env";
import { requestText, type TextResponse } from "./http-request";

export class CliError extends Error {}

export class ApiClient {
  constructor(private readonly config: ClientConfig) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = this.config.token ?? (await this.#localToken());
    let response: TextResponse;
    try {
      response = await requestText(`${this.config.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        timeoutMs: 120_000,
      });
    } catch (error) {
      const reason = (error as Error & { code?: string }).code ?? (error as Error).message;
      throw new CliError(`cannot reach the Stratus server at ${this.config.url} (${reason}): is \`npm start\` running? (or set STRATUS_URL)`);
    }
    if (response.status === 204) return undefined as T;
    let json: unknown;
    try {
      json = JSON.parse(response.text);
    } catch {
      throw new CliError(`unexpected answer from ${this.config.url} (HTTP ${response.status})`);
    }
    if (response.status < 200 || response.status > 299) {
      const message = (json as { error?: { message?: string } }).error?.message ?? `HTTP ${response.status}`;
      throw new CliError(message);
    }
    return json as T;
  }

  /** The server is on this machine: its plaintext loopback NBD listener is reachable (image import/export). */
  get localNbd(): { host: string; port: number } | undefined {
    return this.config.loopback ? this.config.localNbd : undefined;
  }

  /** The local data directory (STRATUS_DATA_DIR): where a gateway on this machine keeps its cache. */
  get dataDir(): string {
    return path.dirname(this.config.tokenFile);
  }

  /** A GET whose answer is a byte stream (a download); errors as request() reports them. */
  async download(pathname: string): Promise<Response> {
    const token = this.config.token ?? (await this.#localToken());
    let response: Response;
    try {
      response = await fetch(`${this.config.url}${pathname}`, { headers: { authorization: `Bearer ${token}` } });
    } catch (error) {
      const reason = (error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new CliError(`cannot reach the Stratus server at ${this.config.url} (${reason}): is \`npm start\` running? (or set STRATUS_URL)`);
    }
    if (!response.ok) {
      const text = await response.text();
      let message = `HTTP ${response.status}`;
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
      } catch {
        // not JSON: keep the status
      }
      throw new CliError(message);
    }
    return response;
  }

  async #localToken(): Promise<string> {
    // The token file is this machine's admin token: it goes to this machine's server and nowhere else.
    if (!this.config.loopback) {
      throw new CliError(
        `STRATUS_URL ${new URL(this.config.url).host} is another machine: set STRATUS_TOKEN (the local token file is sent only to a server on this machine)`,
      );
    }
    try {
      return (await readFile(this.config.tokenFile, "utf8")).trim();
    } catch {
      throw new CliError(
        `no token: set STRATUS_TOKEN, or run on the server's machine where ${this.config.tokenFile} exists (set STRATUS_DATA_DIR if the server uses another data directory)`,
      );
    }
  }
}
