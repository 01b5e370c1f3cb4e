"use client";
/**
 * Resize: growing is one click; shrinking cuts data off the end, so it asks for the volume's name to
 * be typed first (the bytes past the new end are freed by a GC job afterwards).
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Button } from "@/components/ui/button";
import { SizeField } from "@/components/ui/field";
import { LiveRegion, Notice } from "@/components/ui/notice";
import { TypedConfirm } from "@/components/ui/typed-confirm";
import { fieldError, formError, toUserError, type UserFacingError } from "@/lib/errors";
import { formatBytes } from "@/lib/format";
import { parseSizeInput, SIZE_UNITS, splitSize } from "@/lib/sizes";
import { useTRPC } from "@/lib/trpc";

export function ResizeForm({ name, sizeBytes }: { name: string; sizeBytes: number }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const resize = useMutation(trpc.volume.resize.mutationOptions());
  const [problem, setProblem] = useState<UserFacingError | null>(null);
  const [pendingShrink, setPendingShrink] = useState<number | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const initial = splitSize(sizeBytes);

  async function apply(bytes: number, confirmShrink: string | undefined) {
    setProblem(null);
    setDone(null);
    let reconnectNeeded = false;
    try {
      ({ reconnectNeeded } = await resize.mutateAsync({ name, size: bytes, confirmShrink }));
    } catch (error) {
      setProblem(toUserError(error));
      return;
    }
    setPendingShrink(null);
    // NBD fixes the size at the handshake: an attached client keeps the old one until it reconnects.
    setDone(
      `Resized to ${formatBytes(bytes)}.${reconnectNeeded ? " The volume is attached: its clients see the new size after they disconnect and reconnect." : ""}`,
    );
    await queryClient.invalidateQueries({ queryKey: trpc.volume.pathKey() });
  }

  return (
    <div className="space-y-3">
      <form
        noValidate
        className="space-y-3"
        onSubmit={(event) => {
          event.preventDefault();
          const data = new FormData(event.currentTarget);
          const size = parseSizeInput(String(data.get("sizeAmount") ?? ""), String(data.get("sizeUnit") ?? ""));
          if ("error" in size) return setProblem({ field: "size", message: size.error });
          if (size.bytes === sizeBytes) return setProblem({ field: "size", message: "That is the current size." });
          if (size.bytes < sizeBytes) {
            setProblem(null);
            setPendingShrink(size.bytes);
            return;
          }
          setPendingShrink(null);
          void apply(size.bytes, undefined);
        }}
      >
        <SizeField
          key={sizeBytes}
          label="New size"
          amountName="sizeAmount"
          unitName="sizeUnit"
          units={SIZE_UNITS}
          defaultAmount={initial.amount}
          defaultUnit={initial.unit}
          hint={`Now ${formatBytes(sizeBytes)}. Growing is instant; clients see the new size when they reconnect.`}
          error={fieldError(problem, "size", "sizeBytes")}
        />
        <Button type="submit" variant="secondary" busy={resize.isPending && pendingShrink === null}>
          Resize
        </Button>
      </form>
      {pendingShrink !== null && (
        <Notice tone="warning">
          <p className="mb-2">
            Shrinking to <strong>{formatBytes(pendingShrink)}</strong> discards everything after that point. This cannot be undone.
          </p>
          <TypedConfirm
            expected={name}
            prompt={
              <>
                Type <strong className="font-mono">{name}</strong> to shrink the volume
              </>
            }
            actionLabel="Shrink volume"
            busy={resize.isPending}
            onConfirm={(typed) => void apply(pendingShrink, typed)}
            error={fieldError(problem, "confirmShrink")}
          />
        </Notice>
      )}
      {formError(problem, ["size", "sizeBytes", "confirmShrink"]) && <Notice tone="error">{formError(problem, ["size", "sizeBytes", "confirmShrink"])}</Notice>}
      <LiveRegion message={done} />
    </div>
  );
}
