"use client";
/** The user's tokens: name, visible prefix, scope, last use, expiry; revoke asks once more inline. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Badge } from "@/components/ui/card";
import { LiveRegion, Notice } from "@/components/ui/notice";
import { Spinner } from "@/components/ui/spinner";
import type { TokenItem } from "@/lib/api-types";
import { toUserError } from "@/lib/errors";
import { formatDateTime, formatRelative, toDate } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";

const TH = "px-3 py-2.5 text-left text-xs font-semibold uppercase tracking-wide text-slate-500 whitespace-nowrap";
const TD = "px-3 py-3 text-sm whitespace-nowrap";

const STATUS = {
  active: { label: "Active", tone: "green" },
  expired: { label: "Expired", tone: "amber" },
  revoked: { label: "Revoked", tone: "red" },
} as const;

/** The server's status, except that a token can expire while the page is open. */
function tokenStatus(token: TokenItem, now: number): (typeof STATUS)[keyof typeof STATUS] {
  const expires = toDate(token.expiresAt)?.getTime();
  if (token.status === "active" && expires !== undefined && expires <= now) return STATUS.expired;
  return STATUS[token.status];
}

/** The part of a token that identifies it in lists: `stratus_<prefix>_…`. */
function visiblePart(prefix: string): string {
  return `${prefix.startsWith("stratus_") ? prefix.replace(/_?$/, "_") : `stratus_${prefix}_`}…`;
}

export function TokenList() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const tokens = useQuery(trpc.token.list.queryOptions(undefined, { refetchInterval: 10_000 }));
  const revoke = useMutation(trpc.token.revoke.mutationOptions());
  const [confirming, setConfirming] = useState<string | null>(null);
  const [message, setMessage] = useState<{ text: string; tone: "success" | "error" } | null>(null);
  const now = useNow(5_000);

  if (tokens.isPending) {
    return (
      <p className="flex items-center gap-2 text-sm text-slate-500" role="status">
        <Spinner className="h-4 w-4" /> Loading tokens…
      </p>
    );
  }
  if (tokens.isError) return <Notice tone="error">{toUserError(tokens.error).message}</Notice>;
  if (tokens.data.length === 0) return <p className="py-6 text-center text-sm text-slate-500">No tokens yet.</p>;

  return (
    <div>
      <div className="-mx-4 overflow-x-auto sm:-mx-5">
        <table className="min-w-full divide-y divide-slate-200">
          <thead>
            <tr>
              <th scope="col" className={`${TH} pl-4 sm:pl-5`}>Name</th>
              <th scope="col" className={TH}>Token</th>
              <th scope="col" className={TH}>Scope</th>
              <th scope="col" className={TH}>Status</th>
              <th scope="col" className={TH}>Last used</th>
              <th scope="col" className={TH}>Expires</th>
              <th scope="col" className={`${TH} pr-4 text-right sm:pr-5`}>
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {tokens.data.map((token) => {
              const status = tokenStatus(token, now);
              const active = status.label === "Active";
              return (
                <tr key={token.id} data-token={token.name} className={active ? "" : "text-slate-400"}>
                  <td className={`${TD} pl-4 font-medium sm:pl-5 ${active ? "text-slate-900" : ""}`}>
                    {token.name}
                    <div className="text-xs font-normal text-slate-500" title={formatDateTime(token.createdAt)}>
                      created {formatRelative(token.createdAt, now)}
                    </div>
                  </td>
                  <td className={`${TD} font-mono text-xs`}>{visiblePart(token.prefix)}</td>
                  <td className={TD}>{token.scope === "read" ? "Read only" : "Read and write"}</td>
                  <td className={TD}>
                    <Badge tone={status.tone}>{status.label}</Badge>
                  </td>
                  <td className={TD} title={formatDateTime(token.lastUsedAt)} data-testid="token-last-used">
                    {token.lastUsedAt ? formatRelative(token.lastUsedAt, now) : "Never"}
                  </td>
                  <td className={TD} title={formatDateTime(token.expiresAt)}>
                    {token.expiresAt ? formatDateTime(token.expiresAt).slice(0, 10) : "Never"}
                  </td>
                  <td className={`${TD} pr-4 text-right sm:pr-5`}>
                    {!token.revokedAt &&
                      (confirming === token.id ? (
                        <span className="inline-flex gap-2">
                          <Button
                            variant="danger"
                            size="sm"
                            busy={revoke.isPending}
                            onClick={() =>
                              revoke.mutate(
                                { id: token.id },
                                {
                                  onSuccess: () => {
                                    setConfirming(null);
                                    setMessage({ text: `Token “${token.name}” revoked: it no longer works.`, tone: "success" });
                                    void queryClient.invalidateQueries({ queryKey: trpc.token.list.queryKey() });
                                  },
                                  onError: (error) => setMessage({ text: toUserError(error).message, tone: "error" }),
                                },
                              )
                            }
                          >
                            Confirm revoke
                          </Button>
                          <Button variant="ghost" size="sm" onClick={() => setConfirming(null)}>
                            Cancel
                          </Button>
                        </span>
                      ) : (
                        <Button variant="secondary" size="sm" aria-label={`Revoke ${token.name}`} onClick={() => setConfirming(token.id)}>
                          Revoke
                        </Button>
                      ))}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <LiveRegion className="[&>p]:mt-3" message={message?.text} tone={message?.tone} />
    </div>
  );
}
