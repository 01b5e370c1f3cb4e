import type { Metadata } from "next";
import { VolumeDetailView } from "@/components/volumes/volume-detail-view";

type Params = Promise<{ name: string }>;

export async function generateMetadata({ params }: { params: Params }): Promise<Metadata> {
  return { title: decodeURIComponent((await params).name) };
}

export default async function VolumePage({ params, searchParams }: { params: Params; searchParams: Promise<{ created?: string }> }) {
  const name = decodeURIComponent((await params).name);
  const { created } = await searchParams;
  return <VolumeDetailView name={name} justCreated={created === "1"} />;
}
