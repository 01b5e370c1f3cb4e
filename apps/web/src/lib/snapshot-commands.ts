/**
 * Read-only commands for a snapshot export `VOL@NAME`, made from the volume's own nbdcopy command (the
 * server builds those: host, port, TLS query, device folder) by swapping the export in the URI and
 * copying out of it instead of into it. Pure, so it is unit tested without a server.
 */

/** `nbdcopy disk.img URI` for the volume -> `nbdcopy URI' FILE`, URI' naming the snapshot export; null if the shape is not that. */
export function snapshotCopyCommand(volumeCopyCommand: string, volumeExport: string, snapshotExport: string, file: string): string | null {
  const match = /^nbdcopy disk\.img (.+)$/.exec(volumeCopyCommand);
  if (!match) return null;
  const exportInUri = `/${encodeURIComponent(volumeExport)}`;
  // The export is the URI's path: followed by its query, a closing quote, or the end.
  const at = match[1]!.search(new RegExp(`${escapeRegExp(exportInUri)}(?=[?'"]|$)`));
  if (at < 0) return null;
  const uri = match[1]!.slice(0, at) + `/${encodeURIComponent(snapshotExport)}` + match[1]!.slice(at + exportInUri.length);
  return `nbdcopy ${uri} ${file}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
