import { NextRequest } from "next/server";
import { describe, expect, it } from "vitest";
import { proxy } from "../proxy";
import { contentSecurityPolicy } from "./security-headers";

describe("content security policy", () => {
  it("allows only nonce'd scripts, no framing, no plugins, and eval only in development", () => {
    const policy = contentSecurityPolicy("abc123==", { dev: false });
    expect(policy).toContain("script-src 'self' 'nonce-abc123==' 'strict-dynamic'");
    for (const directive of ["default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "form-action 'self'"]) {
      expect(policy).toContain(directive);
    }
    expect(policy).not.toContain("unsafe-eval");
    expect(contentSecurityPolicy("abc123==", { dev: true })).toContain("'unsafe-eval'");
  });

  it("the proxy gives each request a fresh nonce, to Next (request header) and to the browser", () => {
    const first = proxy(new NextRequest("http://stratus.test/volumes"));
    const second = proxy(new NextRequest("http://stratus.test/volumes"));
    const policy = first.headers.get("content-security-policy")!;
    const nonce = /'nonce-([^']+)'/.exec(policy)![1]!;
    expect(Buffer.from(nonce, "base64")).toHaveLength(16);
    expect(second.headers.get("content-security-policy")).not.toBe(policy);
    // NextResponse.next({ request: { headers } }) hands the request headers on as x-middleware-request-*.
    expect(first.headers.get("x-middleware-request-content-security-policy")).toBe(policy);
  });
});
