import { redirect } from "next/navigation";
import type { ReactNode } from "react";
import { auth } from "@/auth";
import { Logo } from "@/components/shell/logo";

/** Sign-in and sign-up: one centred card on a plain background (signed-in visitors go to their volumes). */
export default async function AuthLayout({ children }: { children: ReactNode }) {
  if ((await auth())?.user) redirect("/volumes");
  return (
    <main id="main" className="flex min-h-screen flex-col items-center justify-center px-4 py-12">
      <div className="mb-6">
        <Logo />
      </div>
      <div className="w-full max-w-sm rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200 sm:p-8">{children}</div>
    </main>
  );
}
