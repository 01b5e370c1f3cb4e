import { redirect } from "next/navigation";
import type { ReactNode } from "react";
import { auth } from "@/auth";
import { Nav } from "@/components/shell/nav";

/**
 * Every signed-in page: the top bar and a centred column. Without a session the visitor goes to
 * sign in before anything renders; a session that ends while a page is open is caught by the first
 * query answered UNAUTHORIZED (lib/providers.tsx), which also keeps the way back (callbackUrl).
 */
export default async function DashboardLayout({ children }: { children: ReactNode }) {
  const session = await auth();
  if (!session?.user) redirect("/sign-in");
  return (
    <>
      <Nav />
      <main id="main" className="mx-auto max-w-6xl px-4 py-8 sm:px-6">
        {children}
      </main>
    </>
  );
}
