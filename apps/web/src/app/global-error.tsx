"use client";
/** The last-resort boundary (the root layout itself failed): its own html and body, no providers. */
import { ErrorFallback } from "@/components/error-fallback";
import "./globals.css";

export default function GlobalError({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return (
    <html lang="en">
      <body className="min-h-screen bg-slate-50 text-slate-900 antialiased">
        <ErrorFallback digest={error.digest} onRetry={reset} />
      </body>
    </html>
  );
}
