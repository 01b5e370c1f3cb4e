import type { ReactNode } from "react";
import { Nav } from "@/components/shell/nav";

/**
 * Every signed-in page: the top bar and a centred column. A visitor without a session is sent to
 * sign in by the first query answered UNAUTHORIZED (see lib/providers.tsx).
 */
export default function DashboardLayout({ children }: { children: ReactNode }) {
  return (
    <>
      <Nav />
      <main id="main" className="mx-auto max-w-6xl px-4 py-8 sm:px-6">
        {children}
      </main>
    </>
  );
}
