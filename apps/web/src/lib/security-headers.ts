/**
 * The dashboard's Content-Security-Policy (the other security headers are in next.config.ts). It
 * carries a fresh nonce per request (set by src/proxy.ts): Next.js reads it from the request's CSP
 * header and puts it on its own inline and bundle scripts, so no other script runs. Styles allow 'unsafe-inline' because React renders style attributes,
 * which a nonce cannot cover; 'unsafe-eval' only in development (React's dev tooling needs it).
 */
export function contentSecurityPolicy(nonce: string, options: { dev: boolean }): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'nonce-${nonce}' 'strict-dynamic'${options.dev ? " 'unsafe-eval'" : ""}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' blob: data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

export function newNonce(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return btoa(String.fromCharCode(...bytes));
}
