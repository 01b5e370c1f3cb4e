/**
 * Runs before every page and API request: a fresh CSP nonce, given to Next.js through the request's
 * Content-Security-Policy header (it nonces its own scripts from there) and sent to the browser.
 */
import { NextResponse, type NextRequest } from "next/server";
import { contentSecurityPolicy, newNonce } from "@/lib/security-headers";

export function proxy(request: NextRequest): NextResponse {
  // NODE_ENV is Next's build mode (inlined when it builds), not deployment configuration.
  // eslint-disable-next-line no-restricted-properties
  const policy = contentSecurityPolicy(newNonce(), { dev: process.env.NODE_ENV === "development" });
  const requestHeaders = new Headers(request.headers);
  requestHeaders.set("content-security-policy", policy);
  const response = NextResponse.next({ request: { headers: requestHeaders } });
  response.headers.set("content-security-policy", policy);
  return response;
}

export const config = {
  // Static bundles need no policy of their own (they run under the page's).
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
