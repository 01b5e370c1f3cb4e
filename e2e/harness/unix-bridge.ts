/**
 * A unix socket that forwards each connection to a TCP address: how a process in another network
 * namespace reaches a service that listens only on this namespace's loopback (unix socket paths are
 * shared across network namespaces). PostgreSQL clients find `<dir>/.s.PGSQL.<port>` with
 * `?host=<dir>` in their URL.
 */
import net from "node:net";

export interface UnixBridge {
  path: string;
  close(): Promise<void>;
}

export function bridgeUnixToTcp(socketPath: string, target: { host: string; port: number }): Promise<UnixBridge> {
  const open = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(target.port, target.host);
    for (const socket of [inbound, outbound]) {
      open.add(socket);
      socket.on("close", () => open.delete(socket));
      socket.on("error", () => (socket === inbound ? outbound : inbound).destroy());
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () =>
      resolve({
        path: socketPath,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of open) socket.destroy();
            server.close(() => done());
          }),
      }),
    );
  });
}
