/**
 * Status of a revocable, expiring credential (API token, device): the server's word, except that an
 * active one can expire while the page is open.
 */
import { toDate } from "@/lib/format";
import { Badge } from "./card";

const STATUS = {
  active: { label: "Active", tone: "green" },
  expired: { label: "Expired", tone: "amber" },
  revoked: { label: "Revoked", tone: "red" },
} as const;

export type CredentialStatus = keyof typeof STATUS;

export function credentialStatus(item: { status: CredentialStatus; expiresAt: Date | string | null }, now: number): CredentialStatus {
  const expires = toDate(item.expiresAt)?.getTime();
  return item.status === "active" && expires !== undefined && expires <= now ? "expired" : item.status;
}

export function CredentialStatusBadge({ status }: { status: CredentialStatus }) {
  return <Badge tone={STATUS[status].tone}>{STATUS[status].label}</Badge>;
}

/** The expiry choices of the create forms (days; "" = never). */
export const EXPIRY_OPTIONS = [
  { value: "", label: "Never" },
  { value: "7", label: "In 7 days" },
  { value: "30", label: "In 30 days" },
  { value: "90", label: "In 90 days" },
  { value: "365", label: "In 1 year" },
] as const;
