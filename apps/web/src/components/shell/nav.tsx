"use client";
/** The dashboard's top bar: sections, the signed-in account and sign out. Collapses to a menu on phones. */
import Link from "next/link";
import { usePathname } from "next/navigation";
import { signOutHere } from "@/lib/sign-out";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTRPC } from "@/lib/trpc";
import { Logo } from "./logo";

const SECTIONS = [
  { href: "/volumes", label: "Volumes" },
  { href: "/devices", label: "Devices" },
  { href: "/tokens", label: "API tokens" },
  { href: "/activity", label: "Activity" },
] as const;

export function Nav() {
  const trpc = useTRPC();
  const me = useQuery(trpc.account.me.queryOptions());
  const pathname = usePathname();
  const [open, setOpen] = useState(false);
  const email = me.data?.email;
  // Invitations are for admins only.
  const sections = me.data?.isAdmin ? [...SECTIONS, { href: "/invitations", label: "Invitations" }] : SECTIONS;

  const linkClass = (href: string) => {
    const active = pathname === href || pathname.startsWith(`${href}/`);
    return `rounded-md px-3 py-2 text-sm font-medium ${active ? "bg-slate-100 text-slate-900" : "text-slate-600 hover:bg-slate-50 hover:text-slate-900"}`;
  };
  const isActive = (href: string) => pathname === href || pathname.startsWith(`${href}/`);

  return (
    <header className="border-b border-slate-200 bg-white">
      <nav aria-label="Main" className="mx-auto flex max-w-6xl items-center gap-6 px-4 py-3 sm:px-6">
        <Logo />
        <div className="hidden gap-1 sm:flex">
          {sections.map((s) => (
            <Link key={s.href} href={s.href} className={linkClass(s.href)} aria-current={isActive(s.href) ? "page" : undefined}>
              {s.label}
            </Link>
          ))}
        </div>
        <div className="ml-auto hidden items-center gap-3 sm:flex">
          {email && (
            <span className="max-w-56 truncate text-sm text-slate-600" title={email}>
              {email}
            </span>
          )}
          <button
            type="button"
            onClick={() => void signOutHere()}
            className="rounded-md px-3 py-2 text-sm font-medium text-slate-600 hover:bg-slate-50 hover:text-slate-900"
          >
            Sign out
          </button>
        </div>
        <button
          type="button"
          className="ml-auto rounded-md p-2 text-slate-600 hover:bg-slate-100 sm:hidden"
          aria-expanded={open}
          aria-controls="mobile-menu"
          onClick={() => setOpen((v) => !v)}
        >
          <span className="sr-only">Menu</span>
          <svg viewBox="0 0 20 20" className="h-5 w-5" fill="currentColor" aria-hidden="true">
            <path d="M3 5h14v2H3zM3 9h14v2H3zM3 13h14v2H3z" />
          </svg>
        </button>
      </nav>
      {open && (
        <div id="mobile-menu" className="border-t border-slate-100 px-4 py-2 sm:hidden">
          {sections.map((s) => (
            <Link
              key={s.href}
              href={s.href}
              onClick={() => setOpen(false)}
              className={`block ${linkClass(s.href)}`}
              aria-current={isActive(s.href) ? "page" : undefined}
            >
              {s.label}
            </Link>
          ))}
          {email && <p className="px-3 pt-2 text-xs text-slate-500">{email}</p>}
          <Link href="/sign-out" className="block rounded-md px-3 py-2 text-sm font-medium text-slate-600 hover:bg-slate-50">
            Sign out
          </Link>
        </div>
      )}
    </header>
  );
}
