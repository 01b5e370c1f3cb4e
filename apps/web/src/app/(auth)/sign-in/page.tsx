import type { Metadata } from "next";
import { SignInForm } from "@/components/auth/sign-in-form";
import { safeCallbackPath } from "@/lib/safe-callback";

export const metadata: Metadata = { title: "Sign in" };

export default async function SignInPage({ searchParams }: { searchParams: Promise<{ callbackUrl?: string }> }) {
  const { callbackUrl } = await searchParams;
  // Only same-site paths: a sign-in link must not bounce the user to another site.
  return <SignInForm callbackUrl={safeCallbackPath(callbackUrl)} />;
}
