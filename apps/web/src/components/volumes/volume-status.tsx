/** One word for where a volume stands, shown as a coloured badge in the list and on the detail page. */
import { Badge } from "@/components/ui/card";

export interface StatusInput {
  state: string;
  unlocked?: boolean;
  attached: unknown;
}

export function volumeStatus(volume: StatusInput): { label: string; tone: "slate" | "green" | "amber" | "red" | "indigo" } {
  if (volume.state === "deleting") return { label: "Deleting", tone: "red" };
  if (volume.state === "importing") return { label: "Importing", tone: "indigo" };
  if (volume.attached) return { label: "Attached", tone: "green" };
  if (volume.unlocked === false) return { label: "Locked", tone: "amber" };
  return { label: "Ready", tone: "slate" };
}

export function VolumeStatusBadge({ volume }: { volume: StatusInput }) {
  const status = volumeStatus(volume);
  return <Badge tone={status.tone}>{status.label}</Badge>;
}
