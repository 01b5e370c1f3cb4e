/**
 * A plain-buffer model of a volume for pattern tests: apply the same writes/discards/zeroes to the
 * model as to the export, then turn the model into `read -P` checks (one per run of equal bytes).
 */
export type IoOp =
  | { op: "write"; offset: number; length: number; pattern: number }
  | { op: "discard"; offset: number; length: number }
  | { op: "zero"; offset: number; length: number; unmap?: boolean };

/** Discarded ranges read as zeros: Stratus's Volume promises it (stricter than NBD's TRIM). */
export function applyOps(model: Uint8Array, ops: readonly IoOp[]): void {
  for (const op of ops) model.fill(op.op === "write" ? op.pattern : 0, op.offset, op.offset + op.length);
}

/** qemu-io commands that check [start, end) of the model: `VERB -P byte offset length` per run. */
export function patternReads(model: Uint8Array, start: number, end: number, verb: "read" | "aio_read", maxLength = 4 * 2 ** 20): string[] {
  const commands: string[] = [];
  let runStart = start;
  for (let i = start + 1; i <= end; i++) {
    if (i === end || model[i] !== model[runStart] || i - runStart === maxLength) {
      commands.push(`${verb} -P ${model[runStart]} ${runStart} ${i - runStart}`);
      runStart = i;
    }
  }
  return commands;
}
