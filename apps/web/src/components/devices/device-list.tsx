"use client";
/** The user's device credentials: volumes it may use, status, last use, expiry, certificate fingerprint; revoke. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ConfirmAction } from "@/components/ui/confirm-action";
import { credentialStatus, CredentialStatusBadge } from "@/components/ui/credential-status";
import { ListTable, listFallback, type ListMessage } from "@/components/ui/list-table";
import { TD } from "@/components/ui/table-classes";
import { toUserError } from "@/lib/errors";
import { formatDateTime, formatRelative } from "@/lib/format";
import { useTRPC } from "@/lib/trpc";
import { useNow } from "@/lib/use-now";

export function DeviceList() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const devices = useQuery(trpc.devices.list.queryOptions(undefined, { refetchInterval: 10_000 }));
  const revoke = useMutation(trpc.devices.revoke.mutationOptions());
  const [message, setMessage] = useState<ListMessage | null>(null);
  const now = useNow(5_000);

  const fallback = listFallback(devices, {
    loading: "Loading devices…",
    empty: "No devices yet.",
    error: devices.error ? toUserError(devices.error).message : undefined,
  });
  if (fallback || !devices.data) return fallback;

  return (
    <ListTable headers={["Device", "Volumes", "Status", "Last used", "Expires", "Certificate"]} message={message}>
      {devices.data.map((device) => {
        const status = credentialStatus(device, now);
        const active = status === "active";
        return (
          <tr key={device.id} data-device={device.name} className={active ? "" : "text-slate-400"}>
            <td className={`${TD} pl-4 font-medium sm:pl-5 ${active ? "text-slate-900" : ""}`}>
              {device.name}
              <div className="font-mono text-xs font-normal text-slate-500" title={`created ${formatDateTime(device.createdAt)}`}>
                {device.id}
              </div>
            </td>
            <td className={TD}>{device.volumes === null ? "All" : device.volumes.join(", ") || "None"}</td>
            <td className={TD} data-testid="device-status">
              <CredentialStatusBadge status={status} />
            </td>
            <td className={TD} title={formatDateTime(device.lastUsedAt)} data-testid="device-last-used">
              {device.lastUsedAt ? formatRelative(device.lastUsedAt, now) : "Never"}
            </td>
            <td className={TD} title={formatDateTime(device.expiresAt)}>
              {device.expiresAt ? formatDateTime(device.expiresAt).slice(0, 10) : "Never"}
            </td>
            <td className={`${TD} font-mono text-xs`} title={`SHA-256 ${device.certFingerprintSha256}`}>
              {device.certFingerprintSha256.slice(0, 16)}…
            </td>
            <td className={`${TD} pr-4 text-right sm:pr-5`}>
              {!device.revokedAt && (
                <ConfirmAction
                  label="Revoke"
                  confirmLabel="Confirm revoke"
                  ariaLabel={`Revoke ${device.name}`}
                  busy={revoke.isPending}
                  onConfirm={() =>
                    revoke.mutate(
                      { id: device.id },
                      {
                        onSuccess: () => {
                          setMessage({ text: `Device “${device.name}” revoked: its connections are closed and it can no longer attach.`, tone: "success" });
                          void queryClient.invalidateQueries({ queryKey: trpc.devices.list.queryKey() });
                        },
                        onError: (error) => setMessage({ text: toUserError(error).message, tone: "error" }),
                      },
                    )
                  }
                />
              )}
            </td>
          </tr>
        );
      })}
    </ListTable>
  );
}
