"use client";
/**
 * Admins invite people where open sign-up is off: a single-use sign-up link, shown once (its token is in
 * the link's fragment, which browsers never send to a server), and the list of invitations made, with
 * withdraw for unused ones.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { Badge } from "@/components/ui/card";
import { CopyButton } from "@/components/ui/copy-button";
import { Notice } from "@/components/ui/notice";
import { toUserError } from "@/lib/errors";
import { formatDateTime } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";

const STATE = { open: { label: "Open", tone: "green" }, used: { label: "Used", tone: "slate" }, expired: { label: "Expired", tone: "amber" } } as const;

export function InvitationsPanel() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const list = useQuery(trpc.account.listInvitations.queryOptions());
  const create = useMutation(trpc.account.createInvitation.mutationOptions());
  const revoke = useMutation(trpc.account.revokeInvitation.mutationOptions());
  const [link, setLink] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: trpc.account.listInvitations.queryKey() });

  async function invite() {
    setProblem(null);
    try {
      const created = await create.mutateAsync({ expiresInHours: 7 * 24 });
      setLink(`${window.location.origin}${created.path}`);
      await refresh();
    } catch (error) {
      setProblem(toUserError(error).message);
    }
  }

  if (list.isError) return <Notice tone="error">{toUserError(list.error).message}</Notice>;
  return (
    <div className="space-y-4">
      {problem && <Notice tone="error">{problem}</Notice>}
      {link ? (
        <div role="status" className="space-y-3 rounded-md bg-emerald-50 p-4 ring-1 ring-emerald-200">
          <p className="text-sm text-emerald-900">Send this link to the person you invite. It works once, for 7 days, and is shown only now.</p>
          <div className="flex flex-wrap items-center gap-2">
            <code
              data-testid="invitation-link"
              className="min-w-0 flex-1 overflow-x-auto rounded-md bg-white px-3 py-2 font-mono text-xs break-all ring-1 ring-emerald-200"
            >
              {link}
            </code>
            <CopyButton text={link} what="the invitation link" />
          </div>
          <Button variant="secondary" size="sm" onClick={() => setLink(null)}>
            Done, I have copied it
          </Button>
        </div>
      ) : (
        <Button onClick={() => void invite()} busy={create.isPending}>
          Create invitation link
        </Button>
      )}
      {list.data && list.data.length > 0 && (
        <ul className="divide-y divide-slate-200 text-sm">
          {list.data.map((invitation) => (
            <li key={invitation.id} className="flex flex-wrap items-center gap-3 py-2">
              <Badge tone={STATE[invitation.state].tone}>{STATE[invitation.state].label}</Badge>
              <span className="text-slate-600">made {formatDateTime(invitation.createdAt)}</span>
              <span className="text-slate-600">
                {invitation.usedAt ? `used ${formatDateTime(invitation.usedAt)}` : `expires ${formatDateTime(invitation.expiresAt)}`}
              </span>
              {invitation.state === "open" && (
                <Button variant="secondary" size="sm" className="ml-auto" onClick={() => void revoke.mutateAsync({ id: invitation.id }).then(refresh)}>
                  Withdraw
                </Button>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
