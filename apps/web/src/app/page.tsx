export default function Home() {
  return (
    <main className="mx-auto max-w-3xl px-4 py-12">
      <h1 className="text-2xl font-semibold">Stratus</h1>
      <p className="mt-2 text-slate-600">Disks that live in object storage.</p>
    </main>
  );
}
