import type { Metadata } from "next";
import { SignOutPanel } from "@/components/auth/sign-out-panel";
import { Logo } from "@/components/shell/logo";

export const metadata: Metadata = { title: "Sign out" };

export default function SignOutPage() {
  return (
    <main id="main" className="flex min-h-screen flex-col items-center justify-center px-4 py-12">
      <div className="mb-6">
        <Logo />
      </div>
      <div className="w-full max-w-sm rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200 sm:p-8">
        <SignOutPanel />
      </div>
    </main>
  );
}
