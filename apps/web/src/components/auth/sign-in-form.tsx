"use client";
/**
 * Email + password sign-in through next-auth's Credentials provider. The inputs are uncontrolled
 * (read from FormData) so the password never lands in a DOM attribute, and the form clears the
 * password after a failed attempt. next-auth reports why in `code`: a wrong password or a rate limit.
 */
import Link from "next/link";
import { signIn } from "next-auth/react";
import { useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";

type Problem = { field?: "email" | "password"; message: string };

/** next-auth's `code` for a refused sign-in: "credentials" (default), or the server's "rate_limited_<N>m". */
export function describeSignInFailure(code: string | undefined): Problem {
  const limited = /^rate_limited(?:_(\d+)m)?$/.exec(code ?? "");
  if (limited) {
    const minutes = limited[1] ? Number(limited[1]) : undefined;
    const wait = minutes === undefined ? "a few minutes" : minutes <= 1 ? "a minute" : `${minutes} minutes`;
    return { message: `Too many sign-in attempts. Try again in ${wait}.` };
  }
  return { field: "password", message: "Wrong email or password." };
}

export function SignInForm({ callbackUrl }: { callbackUrl: string }) {
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);
  const passwordRef = useRef<HTMLInputElement>(null);

  async function submit(form: HTMLFormElement) {
    const data = new FormData(form);
    const email = String(data.get("email") ?? "").trim();
    const password = String(data.get("password") ?? "");
    if (!email) return setProblem({ field: "email", message: "Enter your email address." });
    if (!password) return setProblem({ field: "password", message: "Enter your password." });
    setBusy(true);
    setProblem(null);
    try {
      const result = await signIn("credentials", { email, password, redirect: false });
      if (result?.ok && !result.error) {
        // A full load, so every server component sees the new session cookie.
        window.location.assign(callbackUrl);
        return;
      }
      setProblem(describeSignInFailure(result?.code));
    } catch {
      setProblem({ message: "Cannot reach the server. Check your connection and try again." });
    }
    if (passwordRef.current) passwordRef.current.value = "";
    passwordRef.current?.focus();
    setBusy(false);
  }

  return (
    <>
      <h1 className="text-xl font-semibold">Sign in</h1>
      <p className="mt-1 text-sm text-slate-600">
        New here?{" "}
        <Link href="/sign-up" className="font-medium text-indigo-600 hover:text-indigo-500">
          Create an account
        </Link>
      </p>
      <form
        className="mt-6 space-y-4"
        noValidate
        method="post"
        onSubmit={(event) => {
          event.preventDefault();
          void submit(event.currentTarget);
        }}
      >
        {problem && !problem.field && <Notice tone="error">{problem.message}</Notice>}
        <TextField label="Email" name="email" type="email" autoComplete="email" required error={problem?.field === "email" ? problem.message : undefined} />
        <TextField
          ref={passwordRef}
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          error={problem?.field === "password" ? problem.message : undefined}
        />
        <Button type="submit" className="w-full" busy={busy}>
          Sign in
        </Button>
      </form>
    </>
  );
}
