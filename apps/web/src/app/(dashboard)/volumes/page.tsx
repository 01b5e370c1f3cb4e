import type { Metadata } from "next";
import Link from "next/link";
import { buttonClasses } from "@/components/ui/button-classes";
import { Card, PageHeader } from "@/components/ui/card";
import { ImportFromUrl } from "@/components/volumes/import-volume-form";
import { VolumeTable } from "@/components/volumes/volume-table";

export const metadata: Metadata = { title: "Volumes" };

export default function VolumesPage() {
  return (
    <>
      <PageHeader
        title="Volumes"
        description="Disks stored as chunk objects in your bucket. Attach them from any NBD client."
        actions={
          <Link href="/volumes/new" className={buttonClasses("primary")}>
            Create volume
          </Link>
        }
      />
      <ImportFromUrl />
      <Card>
        <VolumeTable />
      </Card>
    </>
  );
}
