/**
 * "Another machine" for a test: a network namespace joined to this one by a veth pair, with addresses
 * the test assigns (needs root). The server side stays in the test's own namespace, listening on
 * `hostAddress` (not loopback, so the gateway requires TLS); clients run in the peer namespace with
 * `ip netns exec`, or with `nsenter --net` when their mounts must be visible outside (FUSE).
 * Names and subnets must be unique per test file so parallel runs never collide.
 */
import { run, runOk } from "../../harness/exec";

export interface PeerNamespace {
  name: string;
  /** The address on this side of the veth pair (servers listen here). */
  hostAddress: string;
  /** The peer namespace's address. */
  peerAddress: string;
  /** argv prefix that runs a command in the peer's network namespace (and a fresh mount namespace). */
  exec: string[];
  /** argv prefix that enters only the peer's network namespace: mounts stay visible to the test. */
  enterNet: string[];
  remove(): Promise<void>;
}

/** `subnet` like "10.79.21": the host side is .1, the peer .2. `tag`: up to 8 letters for link names. */
export async function createPeerNamespace(tag: string, subnet: string): Promise<PeerNamespace> {
  if (!/^[a-z0-9]{1,8}$/.test(tag)) throw new Error(`peer namespace tag ${tag}: 1-8 lowercase letters or digits`);
  const name = `stratus-${tag}`;
  const hostLink = `st${tag}h`;
  const peerLink = `st${tag}p`;
  const hostAddress = `${subnet}.1`;
  const peerAddress = `${subnet}.2`;
  const remove = async () => {
    await run("ip", ["link", "del", hostLink], { timeoutMs: 10_000 });
    await run("ip", ["netns", "del", name], { timeoutMs: 10_000 });
  };
  await remove(); // what an interrupted earlier run left
  try {
    const ip = (...args: string[]) => runOk("ip", args, { timeoutMs: 10_000 });
    await ip("netns", "add", name);
    await ip("link", "add", hostLink, "type", "veth", "peer", "name", peerLink);
    await ip("link", "set", peerLink, "netns", name);
    await ip("addr", "add", `${hostAddress}/24`, "dev", hostLink);
    await ip("link", "set", hostLink, "up");
    await ip("-n", name, "addr", "add", `${peerAddress}/24`, "dev", peerLink);
    await ip("-n", name, "link", "set", peerLink, "up");
    await ip("-n", name, "link", "set", "lo", "up");
  } catch (error) {
    await remove();
    throw error;
  }
  return { name, hostAddress, peerAddress, exec: ["ip", "netns", "exec", name], enterNet: ["nsenter", `--net=/run/netns/${name}`], remove };
}
