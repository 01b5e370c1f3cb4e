/**
 * Messages about async results. Errors use role="alert" (announced at once); successes and progress
 * use role="status" (polite). `LiveRegion` is an always-mounted polite region for messages that
 * replace each other, because a region that appears together with its text is not always announced.
 */
import type { ReactNode } from "react";

const TONES = {
  error: "bg-red-50 text-red-800 ring-red-200",
  success: "bg-emerald-50 text-emerald-800 ring-emerald-200",
  info: "bg-sky-50 text-sky-900 ring-sky-200",
  warning: "bg-amber-50 text-amber-900 ring-amber-200",
} as const;

export function Notice({ tone = "info", children, className = "" }: { tone?: keyof typeof TONES; children: ReactNode; className?: string }) {
  return (
    <div role={tone === "error" ? "alert" : "status"} className={`rounded-md px-3 py-2 text-sm ring-1 ring-inset ${TONES[tone]} ${className}`}>
      {children}
    </div>
  );
}

export function LiveRegion({
  message,
  tone = "success",
  className = "",
}: {
  message?: string | null;
  tone?: "success" | "error" | "info";
  className?: string;
}) {
  return (
    <div aria-live="polite" aria-atomic="true" className={className}>
      {message ? (
        <p className={`text-sm ${tone === "error" ? "text-red-700" : tone === "success" ? "text-emerald-700" : "text-slate-600"}`}>{message}</p>
      ) : null}
    </div>
  );
}
