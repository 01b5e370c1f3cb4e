"use client";
/** The user's tokens: name, visible prefix, scope, last use, expiry; revoke asks once more inline. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ConfirmAction } from "@/components/ui/confirm-action";
import { credentialStatus, CredentialStatusBadge } from "@/components/ui/credential-status";
import { ListTable, listFallback, type ListMessage } from "@/components/ui/list-table";
import { TD } from "@/components/ui/table-classes";
import { toUserError } from "@/lib/errors";
import { formatDateTime, formatRelative } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";

/** The part of a token that identifies it in lists: `stratus_<prefix>_…`. */
function visiblePart(prefix: string): string {
  return `${prefix.startsWith("stratus_") ? prefix.replace(/_?$/, "_") : `stratus_${prefix}_`}…`;
}

export function TokenList() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const tokens = useQuery(trpc.token.list.queryOptions(undefined, { refetchInterval: 10_000 }));
  const revoke = useMutation(trpc.token.revoke.mutationOptions());
  const [message, setMessage] = useState<ListMessage | null>(null);
  const now = useNow(5_000);

  const fallback = listFallback(tokens, {
    loading: "Loading tokens…",
    empty: "No tokens yet.",
    error: tokens.error ? toUserError(tokens.error).message : undefined,
  });
  if (fallback || !tokens.data) return fallback;

  return (
    <ListTable headers={["Name", "Token", "Scope", "Status", "Last used", "Expires"]} message={message}>
      {tokens.data.map((token) => {
        const status = credentialStatus(token, now);
        const active = status === "active";
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
              <CredentialStatusBadge status={status} />
            </td>
            <td className={TD} title={formatDateTime(token.lastUsedAt)} data-testid="token-last-used">
              {token.lastUsedAt ? formatRelative(token.lastUsedAt, now) : "Never"}
            </td>
            <td className={TD} title={formatDateTime(token.expiresAt)}>
              {token.expiresAt ? formatDateTime(token.expiresAt).slice(0, 10) : "Never"}
            </td>
            <td className={`${TD} pr-4 text-right sm:pr-5`}>
              {!token.revokedAt && (
                <ConfirmAction
                  label="Revoke"
                  confirmLabel="Confirm revoke"
                  ariaLabel={`Revoke ${token.name}`}
                  busy={revoke.isPending}
                  onConfirm={() =>
                    revoke.mutate(
                      { id: token.id },
                      {
                        onSuccess: () => {
                          setMessage({ text: `Token “${token.name}” revoked: it no longer works.`, tone: "success" });
                          void queryClient.invalidateQueries({ queryKey: trpc.token.list.queryKey() });
                        },
                        onError: (error) => setMessage({ text: toUserError(error).message, tone: "error" }),
                      },
                    )
                  }
                />
              )}
            </td>
          </tr>
        );
      })}
    </ListTable>
  );
}
