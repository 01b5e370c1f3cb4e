/**
 * Where to go after signing in: only a path on this site. Browsers read `\` as `/` and drop tabs and
 * newlines inside URLs, so `/\evil.com` or `/<TAB>/evil.com` would become `//evil.com` (another host);
 * anything with a backslash or a control character is refused outright, and what remains must resolve
 * to this origin.
 */
export const DEFAULT_CALLBACK = "/volumes";

const PROBE_ORIGIN = "http://stratus.invalid";

export function safeCallbackPath(raw: unknown, fallback: string = DEFAULT_CALLBACK): string {
  if (typeof raw !== "string" || !raw.startsWith("/") || raw.startsWith("//")) return fallback;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[\\\u0000-\u001f\u007f]/.test(raw)) return fallback;
  let url: URL;
  try {
    url = new URL(raw, PROBE_ORIGIN);
  } catch {
    return fallback;
  }
  if (url.origin !== PROBE_ORIGIN) return fallback;
  return `${url.pathname}${url.search}${url.hash}`;
}

/**
 * next-auth's redirect rule: a same-origin absolute URL or a safe path stays (as a URL on this site);
 * everything else goes to the site's root.
 */
export function safeRedirectUrl(url: string, baseUrl: string): string {
  const base = new URL(baseUrl);
  let candidate = url;
  if (!url.startsWith("/")) {
    try {
      const absolute = new URL(url);
      if (absolute.origin !== base.origin) return base.origin;
      candidate = `${absolute.pathname}${absolute.search}${absolute.hash}`;
    } catch {
      return base.origin;
    }
  }
  return `${base.origin}${safeCallbackPath(candidate, "/")}`;
}
