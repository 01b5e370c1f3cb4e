"use client";
/**
 * The one button of the dashboard: variants by intent, a busy state. A submit button stays disabled
 * until the page is hydrated: a form submitted before its JavaScript runs would be sent natively,
 * with its fields (passwords, passphrases) in the URL.
 */
import { useSyncExternalStore, type ButtonHTMLAttributes } from "react";
import { buttonClasses, type Variant } from "./button-classes";
import { Spinner } from "./spinner";

export { buttonClasses, FOCUS_RING } from "./button-classes";

const noop = () => () => {};
/** false during the server render and hydration, true once React runs in the browser. */
export function useHydrated(): boolean {
  return useSyncExternalStore(
    noop,
    () => true,
    () => false,
  );
}

export interface ButtonProps extends ButtonHTMLAttributes<HTMLButtonElement> {
  variant?: Variant;
  size?: "sm" | "md";
  busy?: boolean;
}

export function Button({ variant = "primary", size = "md", busy = false, className = "", children, disabled, type = "button", ...rest }: ButtonProps) {
  const hydrated = useHydrated();
  return (
    <button
      type={type}
      className={`${buttonClasses(variant, size)} ${className}`}
      disabled={disabled || busy || (type === "submit" && !hydrated)}
      aria-busy={busy || undefined}
      {...rest}
    >
      {busy && <Spinner className="h-4 w-4" />}
      {children}
    </button>
  );
}
