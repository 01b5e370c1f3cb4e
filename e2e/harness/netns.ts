/**
 * Two network namespaces joined by a veth pair, with addresses the test assigns (needs root): a
 * "server" machine and a "client" machine that reach each other only over that link. Commands run in
 * one with `ip netns exec`. Names, link names and the subnet must be unique per test file so parallel
 * runs never collide; what an interrupted earlier run left behind is removed first.
 */
import { run, runOk, type RunOptions, type RunResult } from "./exec";

export interface Namespace {
  name: string;
  /** This namespace's address on the veth link. */
  address: string;
  /** Runs `cmd args…` inside the namespace (see exec.ts's run). */
  run(cmd: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** The argv prefix that runs a command inside the namespace. */
  prefix: string[];
}

export interface NamespacePair {
  server: Namespace;
  client: Namespace;
  /** Deletes both namespaces (their veth ends go with them). Safe to call twice. */
  remove(): Promise<void>;
}

/** `tag`: 1-6 lowercase letters or digits (link names are limited to 15 characters); `subnet` like "10.78.20". */
export async function createNamespacePair(tag: string, subnet: string): Promise<NamespacePair> {
  if (!/^[a-z0-9]{1,6}$/.test(tag)) throw new Error(`namespace tag ${tag}: 1-6 lowercase letters or digits`);
  if (!/^10\.\d{1,3}\.\d{1,3}$/.test(subnet)) throw new Error(`subnet ${subnet}: want 10.X.Y`);
  const names = { server: `stratus-${tag}-s`, client: `stratus-${tag}-c` };
  const links = { server: `st${tag}s`, client: `st${tag}c` };
  const remove = async () => {
    for (const name of Object.values(names)) await run("ip", ["netns", "del", name], { timeoutMs: 10_000 });
  };
  await remove();
  const ip = (...args: string[]) => runOk("ip", args, { timeoutMs: 10_000 });
  try {
    await ip("netns", "add", names.server);
    await ip("netns", "add", names.client);
    await ip("link", "add", links.server, "type", "veth", "peer", "name", links.client);
    for (const side of ["server", "client"] as const) {
      await ip("link", "set", links[side], "netns", names[side]);
      await ip("-n", names[side], "addr", "add", `${subnet}.${side === "server" ? 1 : 2}/24`, "dev", links[side]);
      await ip("-n", names[side], "link", "set", links[side], "up");
      await ip("-n", names[side], "link", "set", "lo", "up");
    }
  } catch (error) {
    await remove();
    throw error;
  }
  const namespace = (side: "server" | "client"): Namespace => {
    const prefix = ["ip", "netns", "exec", names[side]];
    return {
      name: names[side],
      address: `${subnet}.${side === "server" ? 1 : 2}`,
      prefix,
      run: (cmd, args, options) => run(prefix[0]!, [...prefix.slice(1), cmd, ...args], options),
    };
  };
  return { server: namespace("server"), client: namespace("client"), remove };
}
