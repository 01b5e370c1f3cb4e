import type { Metadata } from "next";
import { Card, PageHeader } from "@/components/ui/card";
import { CreateTokenForm } from "@/components/tokens/create-token-form";
import { TokenList } from "@/components/tokens/token-list";

export const metadata: Metadata = { title: "API tokens" };

export default function TokensPage() {
  return (
    <>
      <PageHeader title="API tokens" description="Tokens let scripts and the stratus CLI act for you over HTTP." />
      <div className="space-y-6">
        <Card id="new-token" title="New token">
          <CreateTokenForm />
        </Card>
        <Card id="tokens" title="Your tokens">
          <TokenList />
        </Card>
      </div>
    </>
  );
}
