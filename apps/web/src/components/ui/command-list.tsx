"use client";
/** Shell commands, each under its label with a copy button; `testIdPrefix` + id names each code block. */
import { CopyButton } from "./copy-button";

export function CommandList({ commands, testIdPrefix }: { commands: ReadonlyArray<{ id: string; label: string; command: string }>; testIdPrefix: string }) {
  return (
    <ul className="space-y-4">
      {commands.map((entry) => (
        <li key={entry.id} data-command={entry.id}>
          <div className="flex flex-wrap items-center justify-between gap-2">
            <h3 className="text-sm font-medium text-slate-800">{entry.label}</h3>
            <CopyButton text={entry.command} what={`the ${entry.label} command`} />
          </div>
          <pre className="mt-1.5 overflow-x-auto rounded-md bg-slate-900 px-3 py-2.5 font-mono text-xs leading-relaxed text-slate-100">
            <code data-testid={`${testIdPrefix}${entry.id}`}>{entry.command}</code>
          </pre>
        </li>
      ))}
    </ul>
  );
}
