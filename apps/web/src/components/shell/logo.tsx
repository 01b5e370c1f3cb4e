import Link from "next/link";

export function Logo() {
  return (
    <Link href="/volumes" className="inline-flex items-center gap-2 rounded text-lg font-semibold tracking-tight text-slate-900">
      <svg viewBox="0 0 32 32" className="h-7 w-7" aria-hidden="true">
        <rect width="32" height="32" rx="7" fill="#4f46e5" />
        <path d="M7 12h18M7 16.5h13M7 21h16" stroke="#fff" strokeWidth="2.4" strokeLinecap="round" />
      </svg>
      Stratus
    </Link>
  );
}
