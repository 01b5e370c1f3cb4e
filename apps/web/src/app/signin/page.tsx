import { redirect } from "next/navigation";
import { safeCallbackPath } from "@/lib/safe-callback";

/** next-auth's configured sign-in path; the page lives at /sign-in. */
export default async function SignInAlias({ searchParams }: { searchParams: Promise<{ callbackUrl?: string }> }) {
  const { callbackUrl } = await searchParams;
  redirect(callbackUrl ? `/sign-in?callbackUrl=${encodeURIComponent(safeCallbackPath(callbackUrl))}` : "/sign-in");
}
