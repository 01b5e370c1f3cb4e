/** "Loading …" with a spinner, announced politely. */
import { Spinner } from "./spinner";

export function LoadingLine({ children }: { children: string }) {
  return (
    <p className="flex items-center gap-2 text-sm text-slate-500" role="status">
      <Spinner className="h-4 w-4" /> {children}
    </p>
  );
}
