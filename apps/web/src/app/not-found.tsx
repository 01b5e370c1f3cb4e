import Link from "next/link";
import { buttonClasses } from "@/components/ui/button-classes";

export default function NotFound() {
  return (
    <main id="main" className="mx-auto max-w-lg px-4 py-24 text-center">
      <p className="text-sm font-semibold text-indigo-600">404</p>
      <h1 className="mt-2 text-2xl font-semibold">Nothing here</h1>
      <p className="mt-2 text-slate-600">The page or volume you asked for does not exist, or it is not yours.</p>
      <Link href="/volumes" className={`${buttonClasses("primary")} mt-6`}>
        Back to volumes
      </Link>
    </main>
  );
}
