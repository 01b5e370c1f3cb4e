import type { Metadata } from "next";
import { SignUpForm } from "@/components/auth/sign-up-form";
import { getRuntime } from "@/server/runtime";
import { signUpPolicy } from "@/server/sign-up-policy";

export const metadata: Metadata = { title: "Create an account" };

export default async function SignUpPage() {
  return <SignUpForm inviteOnly={signUpPolicy(await getRuntime()) === "invite"} />;
}
