"use client";
/**
 * A new device credential's files, offered once: the whole folder as a tar (unpacks with keys 0600),
 * or each file on its own. Once dismissed the mutation is reset and the secret is gone from the page.
 */
import { useEffect, useRef } from "react";
import { Button } from "@/components/ui/button";
import type { CreatedDevice } from "@/lib/api-types";
import { downloadFile } from "@/lib/download";
import { makeTar } from "@/lib/tar";

export function DeviceSecret({ created, onDone }: { created: CreatedDevice; onDone: () => void }) {
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => headingRef.current?.focus(), []);
  const { folder, files, credential } = created;
  const tarName = `stratus-device-${folder}.tar`;
  const downloadTar = () =>
    downloadFile(
      tarName,
      makeTar([{ name: `${folder}/`, mode: 0o700 }, ...files.map((f) => ({ name: `${folder}/${f.name}`, content: f.content, mode: f.mode }))]),
      "application/x-tar",
    );
  return (
    <div role="status" className="space-y-3 rounded-md bg-emerald-50 p-4 ring-1 ring-emerald-200">
      <h3 ref={headingRef} tabIndex={-1} className="text-sm font-semibold text-emerald-900 focus:outline-none">
        Device credential “{credential.name}” created
      </h3>
      <p className="text-sm text-emerald-900">
        Download it now: this is the only time its key is shown. Stratus keeps only the certificate&apos;s fingerprint.
      </p>
      <div className="flex flex-wrap gap-2">
        <Button size="sm" onClick={downloadTar}>
          Download {tarName}
        </Button>
        {files.map((f) => (
          <Button
            key={f.name}
            variant="secondary"
            size="sm"
            onClick={() => downloadFile(f.name, f.content, "application/octet-stream")}
            aria-label={`Download ${f.name}`}
          >
            {f.name}
          </Button>
        ))}
      </div>
      <p className="text-xs text-emerald-900">On the device, unpack it where the attach commands look for it:</p>
      <pre className="overflow-x-auto rounded-md bg-white px-3 py-2 font-mono text-xs text-slate-900 ring-1 ring-emerald-200">
        <code data-testid="device-unpack">{`mkdir -p ~/.config/stratus/devices && tar -xf ${tarName} -C ~/.config/stratus/devices`}</code>
      </pre>
      <p className="text-xs text-emerald-900">
        It holds <code className="font-mono">keys.psk</code> (TLS-PSK, identity <code className="font-mono">{credential.id}</code>),{" "}
        <code className="font-mono">client-cert.pem</code> + <code className="font-mono">client-key.pem</code> (X.509) and{" "}
        <code className="font-mono">ca-cert.pem</code>. A volume&apos;s page shows the commands for this device.
      </p>
      <Button variant="secondary" size="sm" onClick={onDone}>
        Done, I have saved it
      </Button>
    </div>
  );
}
