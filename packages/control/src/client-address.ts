/**
 * The client's address, for per-address rate limits and the activity log. Only the TCP peer that the
 * HTTP server itself saw is believed: a diagnostics-channel hook copies the socket's address into a
 * request header whose name has a random part made once per process, so no client can send or
 * overwrite it (the same hook serves `next start` and the gateway's embedded dashboard). X-Forwarded-For
 * is read only when that peer is a configured trusted proxy (STRATUS_TRUSTED_PROXIES), and then only
 * as far back as the chain of trusted proxies goes.
 */
import { randomBytes } from "node:crypto";
import { subscribe } from "node:diagnostics_channel";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { BlockList, isIP } from "node:net";

// On globalThis: Next bundles its own copy of this module beside the gateway's.
const HEADER = Symbol.for("stratus.peer-header");
const INSTALLED = Symbol.for("stratus.peer-header-installed");
type PeerGlobals = typeof globalThis & { [HEADER]?: string; [INSTALLED]?: boolean };

/** The per-process header name that carries the socket's peer address into route handlers. */
export function peerHeaderName(): string {
  const g = globalThis as PeerGlobals;
  g[HEADER] ??= `x-stratus-peer-${randomBytes(12).toString("hex")}`;
  return g[HEADER];
}

/** Sets the peer header on every request any HTTP server of this process receives. Idempotent. */
export function installPeerHeader(): void {
  const g = globalThis as PeerGlobals;
  if (g[INSTALLED]) return;
  g[INSTALLED] = true;
  const name = peerHeaderName();
  subscribe("http.server.request.start", (message) => {
    const { request, socket } = message as { request: IncomingMessage; socket: Socket };
    request.headers[name] = socket.remoteAddress ?? "";
  });
}

/** STRATUS_TRUSTED_PROXIES: addresses and CIDR ranges, comma-separated. Throws a message naming it. */
export function parseTrustedProxies(text: string | undefined): BlockList | undefined {
  if (!text?.trim()) return undefined;
  const list = new BlockList();
  for (const entry of text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [address = "", bits, extra] = entry.split("/");
    const family = isIP(address);
    const prefix = bits === undefined ? undefined : Number(bits);
    const maxPrefix = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (prefix !== undefined && !(Number.isInteger(prefix) && prefix >= 0 && prefix <= maxPrefix))) {
      throw new Error(`STRATUS_TRUSTED_PROXIES: ${JSON.stringify(entry)} is not an IP address or CIDR range (e.g. 10.0.0.5, 10.0.0.0/8, fd00::/8)`);
    }
    const type = family === 6 ? "ipv6" : "ipv4";
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  }
  return list;
}

/** 127.0.0.0/8, ::1 and localhost: addresses that never leave this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** "::ffff:10.0.0.1" (an IPv4 client on a dual-stack socket) reads as 10.0.0.1. */
function normalise(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

function isTrusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 6 ? "ipv6" : "ipv4");
}

/** The client's address for this request's headers, or undefined when the HTTP server set none. */
export function clientAddress(headers: Headers, trustedProxies: BlockList | undefined): string | undefined {
  const peer = normalise(headers.get(peerHeaderName()) ?? "");
  if (!isIP(peer)) return undefined;
  if (!trustedProxies || !isTrusted(trustedProxies, peer)) return peer;
  // Walk back from the proxy that reached us: each trusted hop vouches for the address before it.
  const hops = (headers.get("x-forwarded-for") ?? "").split(",").map((hop) => normalise(hop.trim()));
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (!isIP(hop)) break;
    client = hop;
    if (!isTrusted(trustedProxies, hop)) break;
  }
  return client;
}
