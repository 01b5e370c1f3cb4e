/**
 * The dashboard's stand-in until the Next.js control plane lands: one static page that says what
 * runs here and how to attach. Served by the gateway process on the web port.
 */
export function renderPlaceholderPage(options: { nbdUrl: string }): string {
  const nbd = escapeHtml(options.nbdUrl);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stratus</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; padding: 0 1rem; color: #1e293b; }
  h1 { font-size: 1.6rem; } code, pre { background: #f1f5f9; border-radius: 4px; padding: 0.1rem 0.3rem; }
  pre { padding: 0.8rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>Stratus</h1>
<p>Disks that live in object storage. The gateway is serving NBD at <code>${nbd}</code>.</p>
<p>The dashboard is on its way. Until then, manage volumes from a shell on this machine:</p>
<pre>npx stratus volume create mydisk --size 10G
npx stratus volume list
nbdinfo ${nbd}/mydisk</pre>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
