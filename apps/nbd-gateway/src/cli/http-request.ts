/**
 * One HTTP request with node:http(s), answered as status and text. The CLI's calls use this rather
 * than fetch: fetch's first use loads undici and compiles its WebAssembly parser, which held a short
 * command's exit back by most of a second.
 */
import http from "node:http";
import https from "node:https";

export interface TextResponse {
  status: number;
  text: string;
}

export function requestText(url: string, init: { method: string; headers: Record<string, string>; body?: string; timeoutMs: number }): Promise<TextResponse> {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? https : http;
  const headers = init.body === undefined ? init.headers : { ...init.headers, "content-length": String(Buffer.byteLength(init.body)) };
  return new Promise((resolve, reject) => {
    const request = transport.request(target, { method: init.method, headers, signal: AbortSignal.timeout(init.timeoutMs) }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(init.body);
  });
}
