"use client";
/**
 * Account creation: `account.signUp` over tRPC, then the same credentials sign the new user in.
 * Client checks (matching passwords, length) run first so the common mistakes need no round trip;
 * the server's answer (email taken, weak password) lands next to its field.
 */
import Link from "next/link";
import { signIn } from "next-auth/react";
import { useMutation } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { TextField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

/** The server's rule (accounts verb); checked here first to save a round trip. */
export const MIN_PASSWORD_LENGTH = 10;
const FIELDS = ["email", "password", "confirmPassword", "invitation"] as const;

/**
 * `inviteOnly`: open sign-up is off here, so an invitation (or, for the first admin, the setup token
 * from the log) is needed. An invitation link carries it in the fragment (`#invitation=…`), which the
 * browser never sends to the server; the form reads it from there.
 */
export function SignUpForm({ inviteOnly }: { inviteOnly: boolean }) {
  const invitationRef = useRef<HTMLInputElement>(null);
  const [invited, setInvited] = useState(false);
  useEffect(() => {
    const token = new URLSearchParams(window.location.hash.slice(1)).get("invitation");
    if (!token || !invitationRef.current) return;
    invitationRef.current.value = token;
    setInvited(true);
    // Out of the address bar and history.
    window.history.replaceState(null, "", window.location.pathname);
  }, []);
  const trpc = useTRPC();
  const signUp = useMutation(trpc.account.signUp.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [signingIn, setSigningIn] = useState(false);

  async function submit(form: HTMLFormElement) {
    const data = new FormData(form);
    const email = String(data.get("email") ?? "").trim();
    const password = String(data.get("password") ?? "");
    const confirm = String(data.get("confirmPassword") ?? "");
    const invitation = String(data.get("invitation") ?? "").trim();
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) return setProblem({ field: "email", message: "Enter an email address like you@example.com." });
    if (password.length < MIN_PASSWORD_LENGTH) return setProblem({ field: "password", message: `Use at least ${MIN_PASSWORD_LENGTH} characters.` });
    if (password !== confirm) return setProblem({ field: "confirmPassword", message: "The passwords do not match." });
    if (inviteOnly && !invitation) return setProblem({ field: "invitation", message: "Paste the invitation (or setup token) you were given." });
    setProblem(null);
    try {
      await signUp.mutateAsync({ email, password, invitation: invitation || undefined });
    } catch (error) {
      setProblem(toUserError(error));
      return;
    }
    setSigningIn(true);
    const result = await signIn("credentials", { email, password, redirect: false }).catch(() => undefined);
    if (result?.ok && !result.error) {
      window.location.assign("/volumes");
      return;
    }
    setSigningIn(false);
    setProblem({ message: "Your account was created, but signing in failed. Sign in with your new password." });
  }

  return (
    <>
      <h1 className="text-xl font-semibold">Create your account</h1>
      <p className="mt-1 text-sm text-slate-600">
        Already have one?{" "}
        <Link href="/sign-in" className="font-medium text-indigo-600 hover:text-indigo-500">
          Sign in
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
        {formError(problem, FIELDS) && <Notice tone="error">{formError(problem, FIELDS)}</Notice>}
        <TextField label="Email" name="email" type="email" autoComplete="email" required error={fieldError(problem, "email")} />
        <TextField
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          required
          hint={`At least ${MIN_PASSWORD_LENGTH} characters.`}
          error={fieldError(problem, "password")}
        />
        <TextField
          label="Confirm password"
          name="confirmPassword"
          type="password"
          autoComplete="new-password"
          required
          error={fieldError(problem, "confirmPassword")}
        />
        <div hidden={!inviteOnly && !invited}>
          <TextField
            ref={invitationRef}
            label="Invitation"
            name="invitation"
            autoComplete="off"
            spellCheck={false}
            hint="Sign-up here is by invitation: the token from your invitation link, or the first admin's setup token from the server log."
            error={fieldError(problem, "invitation")}
          />
        </div>
        <Button type="submit" className="w-full" busy={signUp.isPending || signingIn}>
          Create account
        </Button>
      </form>
    </>
  );
}
