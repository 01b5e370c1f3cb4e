/** "Which gateway, which clients, since when" for an attached volume; "—" when nobody is attached. */
import { formatDateTime, formatRelative } from "@/lib/format";

export interface AttachedInfo {
  gatewayId: string;
  connections: number;
  /** When the holding gateway opened the volume (ISO). */
  since: string | number | Date | null;
  clients?: readonly string[];
}

export function AttachedCell({ attached, now }: { attached: AttachedInfo | null | undefined; now: number }) {
  if (!attached) return <span className="text-slate-400">Not attached</span>;
  const clients = attached.clients ?? [];
  return (
    <div className="text-sm">
      <div className="font-medium text-slate-800">
        {attached.connections} {attached.connections === 1 ? "connection" : "connections"}
        <span className="font-normal text-slate-500"> on {attached.gatewayId}</span>
      </div>
      {clients.length > 0 && <div className="truncate font-mono text-xs text-slate-500">{clients.join(", ")}</div>}
      {attached.since && (
        <div className="text-xs text-slate-500" title={formatDateTime(attached.since)}>
          since {formatRelative(attached.since, now)}
        </div>
      )}
    </div>
  );
}
