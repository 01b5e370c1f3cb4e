import { redirect } from "next/navigation";

/** The dashboard starts at the volume list; the dashboard layout sends visitors to sign in. */
export default function Home(): never {
  redirect("/volumes");
}
