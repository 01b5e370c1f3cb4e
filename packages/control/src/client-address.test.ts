/**
 * The client address comes from the socket (through a header named per process), and from
 * X-Forwarded-For only behind a configured trusted proxy. Checked with a real HTTP server: whatever a
 * client sends, the handler sees the socket's address.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clientAddress, installPeerHeader, parseTrustedProxies, peerHeaderName } from "./client-address";

const withPeer = (peer: string, extra: Record<string, string> = {}) => new Headers({ [peerHeaderName()]: peer, ...extra });

describe("client address", () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    installPeerHeader();
    installPeerHeader(); // idempotent
    server = createServer((req, res) => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers.set(name, value);
      res.end(JSON.stringify({ open: clientAddress(headers, undefined), trusting: clientAddress(headers, parseTrustedProxies("127.0.0.1")) }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise((resolve) => server?.close(resolve)));

  it("is the socket's peer, whatever headers a client sends", async () => {
    const name = peerHeaderName();
    expect(name).toMatch(/^x-stratus-peer-[0-9a-f]{24}$/);
    const spoofed = { "x-stratus-peer": "203.0.113.9", "x-forwarded-for": "203.0.113.10", "x-real-ip": "203.0.113.11", [name]: "203.0.113.12" };
    const answer = await (await fetch(url, { headers: spoofed })).json();
    // Untrusted: the socket. The loopback peer trusted as a proxy: its X-Forwarded-For.
    expect(answer).toEqual({ open: "127.0.0.1", trusting: "203.0.113.10" });
    expect(await (await fetch(url)).json()).toEqual({ open: "127.0.0.1", trusting: "127.0.0.1" });
  });

  it("believes X-Forwarded-For only as far back as the trusted proxies go", () => {
    const trusted = parseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8");
    expect(clientAddress(withPeer("198.51.100.4", { "x-forwarded-for": "1.2.3.4" }), trusted)).toBe("198.51.100.4");
    expect(clientAddress(withPeer("10.1.2.3", { "x-forwarded-for": "1.2.3.4" }), trusted)).toBe("1.2.3.4");
    // A client's own forged entry sits left of the one the proxy appended.
    expect(clientAddress(withPeer("10.1.2.3", { "x-forwarded-for": "6.6.6.6, 1.2.3.4" }), trusted)).toBe("1.2.3.4");
    expect(clientAddress(withPeer("10.1.2.3", { "x-forwarded-for": "6.6.6.6, 1.2.3.4, 192.0.2.7" }), trusted)).toBe("1.2.3.4");
    expect(clientAddress(withPeer("fd00::1", { "x-forwarded-for": "2001:db8::5" }), trusted)).toBe("2001:db8::5");
    expect(clientAddress(withPeer("10.1.2.3", { "x-forwarded-for": "garbage" }), trusted)).toBe("10.1.2.3");
    expect(clientAddress(withPeer("10.1.2.3"), trusted)).toBe("10.1.2.3");
    expect(clientAddress(withPeer("::ffff:198.51.100.4"), undefined)).toBe("198.51.100.4");
    expect(clientAddress(new Headers({ "x-stratus-peer": "1.2.3.4", "x-forwarded-for": "1.2.3.4" }), trusted)).toBeUndefined();
  });

  it("refuses a malformed STRATUS_TRUSTED_PROXIES entry, naming the variable", () => {
    expect(parseTrustedProxies(undefined)).toBeUndefined();
    expect(parseTrustedProxies(" ")).toBeUndefined();
    for (const bad of ["proxy.internal", "10.0.0.0/33", "10.0.0.1/8/1", "fd00::/129", "10.0.0.0/x"]) {
      expect(() => parseTrustedProxies(`10.0.0.1, ${bad}`)).toThrow(/^STRATUS_TRUSTED_PROXIES: .* is not an IP address or CIDR range/);
    }
  });
});
