"use client";
/**
 * The error boundary for every page: a friendly sentence and a way on, never the error's message or
 * stack (those may carry internals). `digest` lets an operator find the server log line.
 */
import { ErrorFallback } from "@/components/error-fallback";

export default function PageError({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  return <ErrorFallback digest={error.digest} onRetry={reset} />;
}
