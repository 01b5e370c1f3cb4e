"use client";
/**
 * The TLS attach commands for this volume from one of the user's devices: pick a device credential
 * (active, and allowed this volume), copy a command. The files are expected where the device download
 * unpacks, ~/.config/stratus/devices/NAME.
 */
import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useState } from "react";
import { CommandList } from "@/components/ui/command-list";
import { SelectField } from "@/components/ui/field";
import { Notice } from "@/components/ui/notice";
import { LoadingLine } from "@/components/ui/loading-line";
import { toUserError } from "@/lib/errors";
import { useTRPC } from "@/lib/trpc";

export function DeviceAttachCommands({ name }: { name: string }) {
  const trpc = useTRPC();
  const devices = useQuery(trpc.devices.list.queryOptions());
  const usable = (devices.data ?? []).filter((d) => d.status === "active" && (d.volumes === null || d.volumes.includes(name)));
  const [chosen, setChosen] = useState<string | null>(null);
  const deviceId = chosen && usable.some((d) => d.id === chosen) ? chosen : usable[0]?.id;
  const commands = useQuery({ ...trpc.devices.attachCommands.queryOptions({ name, device: deviceId ?? "" }), enabled: deviceId !== undefined });

  if (devices.isPending) return <LoadingLine>Loading devices…</LoadingLine>;
  if (devices.isError) return <Notice tone="error">{toUserError(devices.error).message}</Notice>;
  if (usable.length === 0) {
    return (
      <p className="text-sm text-slate-600">
        No device may attach this volume yet.{" "}
        <Link href="/devices" className="font-medium text-indigo-700 hover:underline">
          Create a device credential
        </Link>{" "}
        for the machine that should see the disk.
      </p>
    );
  }
  return (
    <div className="space-y-4">
      <SelectField
        label="Device"
        className="max-w-xs"
        value={deviceId}
        onChange={(event) => setChosen(event.currentTarget.value)}
        options={usable.map((d) => ({ value: d.id, label: d.name }))}
        hint="Its files unpacked under ~/.config/stratus/devices/"
      />
      {commands.isPending && <LoadingLine>Loading commands…</LoadingLine>}
      {commands.isError && <Notice tone="error">{toUserError(commands.error).message}</Notice>}
      {commands.data && <CommandList commands={commands.data.commands} testIdPrefix="tls-command-" />}
    </div>
  );
}
