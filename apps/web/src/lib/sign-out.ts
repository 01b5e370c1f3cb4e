"use client";
import { signOut } from "next-auth/react";

/**
 * Ends the session, then goes to the sign-in page on this same origin. next-auth's own redirect uses
 * the URL it reconstructs for the server (which can name another host than the one in the address
 * bar, e.g. localhost for 127.0.0.1), and cookies do not follow a host change.
 */
export async function signOutHere(): Promise<void> {
  try {
    await signOut({ redirect: false });
  } finally {
    window.location.assign("/sign-in");
  }
}
