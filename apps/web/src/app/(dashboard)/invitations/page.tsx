import type { Metadata } from "next";
import { Card, PageHeader } from "@/components/ui/card";
import { InvitationsPanel } from "@/components/invitations/invitations-panel";

export const metadata: Metadata = { title: "Invitations" };

export default function InvitationsPage() {
  return (
    <>
      <PageHeader title="Invitations" description="Where open sign-up is off, people join with a link from an admin." />
      <Card id="invitations" title="Invite someone">
        <InvitationsPanel />
      </Card>
    </>
  );
}
