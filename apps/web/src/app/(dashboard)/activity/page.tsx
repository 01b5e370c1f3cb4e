import type { Metadata } from "next";
import { AccountActivity } from "@/components/activity/account-activity";
import { Card, PageHeader } from "@/components/ui/card";

export const metadata: Metadata = { title: "Activity" };

export default function ActivityPage() {
  return (
    <>
      <PageHeader
        title="Activity"
        description="Sign-ins, attaches and detaches, and what was done to each volume, newest first. Each volume's page shows its own."
      />
      <Card id="activity" title="Account activity">
        <AccountActivity />
      </Card>
    </>
  );
}
