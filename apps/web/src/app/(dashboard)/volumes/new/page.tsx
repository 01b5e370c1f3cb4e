import type { Metadata } from "next";
import Link from "next/link";
import { Card, PageHeader } from "@/components/ui/card";
import { CreateVolumeForm } from "@/components/volumes/create-volume-form";

export const metadata: Metadata = { title: "Create volume" };

export default function NewVolumePage() {
  return (
    <div className="mx-auto max-w-3xl">
      <nav aria-label="Breadcrumb" className="mb-2 text-sm">
        <Link href="/volumes" className="text-slate-500 hover:text-slate-800">
          ← Volumes
        </Link>
      </nav>
      <PageHeader title="Create volume" />
      <Card>
        <CreateVolumeForm />
      </Card>
    </div>
  );
}
