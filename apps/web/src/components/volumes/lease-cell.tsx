/** The volume's writer, from its lease: which device, from where, since when; "Nobody" when free. */
import { formatDateTime, formatRelative } from "@/lib/format";

export interface LeaseInfo {
  holder: string;
  clientAddress: string | null;
  since: string;
}

export function LeaseCell({ lease, now }: { lease: LeaseInfo | null | undefined; now: number }) {
  if (!lease) return <span className="text-slate-400">Nobody</span>;
  return (
    <div className="text-sm">
      <div className="font-medium text-slate-800">
        {lease.holder}
        {lease.clientAddress && <span className="font-normal text-slate-500"> ({lease.clientAddress})</span>}
      </div>
      <div className="text-xs text-slate-500" title={formatDateTime(lease.since)}>
        since {formatRelative(lease.since, now)}
      </div>
    </div>
  );
}
