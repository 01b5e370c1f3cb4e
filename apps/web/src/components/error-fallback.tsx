"use client";
import Link from "next/link";
import { Button, buttonClasses } from "./ui/button";

export function ErrorFallback({ digest, onRetry }: { digest?: string; onRetry: () => void }) {
  return (
    <main id="main" role="alert" className="mx-auto max-w-lg px-4 py-24 text-center">
      <h1 className="text-2xl font-semibold">Something went wrong</h1>
      <p className="mt-2 text-slate-600">This page ran into a problem. Your volumes and data are not affected. Try again, or go back to the volume list.</p>
      {digest && <p className="mt-2 text-xs text-slate-500">Reference: {digest}</p>}
      <div className="mt-6 flex justify-center gap-3">
        <Button onClick={onRetry}>Try again</Button>
        <Link href="/volumes" className={buttonClasses("secondary")}>
          Volumes
        </Link>
      </div>
    </main>
  );
}
