"use client";
/** The deployment CA's certificate (what clients verify the gateway against) and its SHA-256 fingerprint. */
import { useQuery } from "@tanstack/react-query";
import { Button } from "@/components/ui/button";
import { Notice } from "@/components/ui/notice";
import { LoadingLine } from "@/components/ui/loading-line";
import { downloadFile } from "@/lib/download";
import { toUserError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

/** "ab12…" as "AB:12:…", the way openssl and browsers print fingerprints. */
function colonHex(hex: string): string {
  return (hex.toUpperCase().match(/.{1,2}/g) ?? []).join(":");
}

export function NbdCa() {
  const trpc = useTRPC();
  const ca = useQuery(trpc.devices.ca.queryOptions());
  if (ca.isPending) return <LoadingLine>Loading the CA certificate…</LoadingLine>;
  if (ca.isError) return <Notice tone="error">{toUserError(ca.error).message}</Notice>;
  return (
    <div className="space-y-3">
      <p className="text-sm text-slate-700">
        SHA-256 fingerprint:{" "}
        <code data-testid="nbd-ca-fingerprint" className="font-mono text-xs break-all text-slate-900">
          {colonHex(ca.data.fingerprintSha256)}
        </code>
      </p>
      <p className="text-xs text-slate-500">
        Compare it with <code className="font-mono">openssl x509 -noout -fingerprint -sha256 -in ca-cert.pem</code>. Every device download includes this
        certificate as <code className="font-mono">ca-cert.pem</code>.
      </p>
      <Button variant="secondary" size="sm" onClick={() => downloadFile("stratus-nbd-ca.pem", ca.data.certPem, "application/x-pem-file")}>
        Download the CA certificate
      </Button>
    </div>
  );
}
