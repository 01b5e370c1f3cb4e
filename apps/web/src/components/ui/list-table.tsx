/**
 * The dashboard's list of revocable things (tokens, devices): the loading, error and empty states,
 * then a table whose last column holds the row actions, and a live region for what an action did.
 */
import type { ReactNode } from "react";
import { LoadingLine } from "./loading-line";
import { LiveRegion, Notice } from "./notice";
import { TH } from "./table-classes";

export interface ListMessage {
  text: string;
  tone: "success" | "error";
}

/** What to show instead of the table while loading, on error or when empty; null once there are rows. */
export function listFallback(
  query: { isPending: boolean; isError: boolean; data?: readonly unknown[] },
  texts: { loading: string; empty: string; error?: string },
): ReactNode {
  if (query.isPending) return <LoadingLine>{texts.loading}</LoadingLine>;
  if (query.isError || !query.data) return <Notice tone="error">{texts.error ?? "Could not load the list."}</Notice>;
  if (query.data.length === 0) return <p className="py-6 text-center text-sm text-slate-500">{texts.empty}</p>;
  return null;
}

export function ListTable({ headers, message, children }: { headers: string[]; message: ListMessage | null; children: ReactNode }) {
  return (
    <div>
      <div className="-mx-4 overflow-x-auto sm:-mx-5">
        <table className="min-w-full divide-y divide-slate-200">
          <thead>
            <tr>
              {headers.map((header, i) => (
                <th key={header} scope="col" className={i === 0 ? `${TH} pl-4 sm:pl-5` : TH}>
                  {header}
                </th>
              ))}
              <th scope="col" className={`${TH} pr-4 text-right sm:pr-5`}>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">{children}</tbody>
        </table>
      </div>
      <LiveRegion className="[&>p]:mt-3" message={message?.text} tone={message?.tone} />
    </div>
  );
}
