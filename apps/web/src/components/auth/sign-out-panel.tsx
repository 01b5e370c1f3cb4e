"use client";
import Link from "next/link";
import { signOutHere } from "@/lib/sign-out";
import { useState } from "react";
import { Button, buttonClasses } from "@/components/ui/button";

export function SignOutPanel() {
  const [busy, setBusy] = useState(false);
  return (
    <>
      <h1 className="text-xl font-semibold">Sign out</h1>
      <p className="mt-1 text-sm text-slate-600">Volumes stay attached and keep running; only this browser is signed out.</p>
      <div className="mt-6 flex gap-3">
        <Button
          busy={busy}
          onClick={() => {
            setBusy(true);
            void signOutHere();
          }}
        >
          Sign out
        </Button>
        <Link href="/volumes" className={buttonClasses("secondary")}>
          Cancel
        </Link>
      </div>
    </>
  );
}
