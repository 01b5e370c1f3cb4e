"use client";
/** A destructive action that asks once more inline: "Revoke" becomes "Confirm revoke" + "Cancel". */
import { useState } from "react";
import { Button } from "./button";

export function ConfirmAction({
  label,
  confirmLabel,
  ariaLabel,
  busy,
  onConfirm,
}: {
  label: string;
  confirmLabel: string;
  ariaLabel: string;
  busy: boolean;
  onConfirm: () => void;
}) {
  const [confirming, setConfirming] = useState(false);
  if (!confirming) {
    return (
      <Button variant="secondary" size="sm" aria-label={ariaLabel} onClick={() => setConfirming(true)}>
        {label}
      </Button>
    );
  }
  return (
    <span className="inline-flex gap-2">
      <Button variant="danger" size="sm" busy={busy} onClick={onConfirm}>
        {confirmLabel}
      </Button>
      <Button variant="ghost" size="sm" onClick={() => setConfirming(false)}>
        Cancel
      </Button>
    </span>
  );
}
