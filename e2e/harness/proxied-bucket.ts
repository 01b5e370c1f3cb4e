/**
 * A gateway's bucket as an S3 server behind the fault proxy (@stratus/storage/testing), which counts
 * the requests that reach it and can fail, stall or cut them off.
 */
import { startFaultProxy, startS3TestServer, type FaultProxy, type S3TestServer } from "@stratus/storage/testing";
import { s3GatewayEnv } from "./bucket";
import { describeLogs, startGateway, type Gateway, type StartGatewayOptions } from "./gateway";

export interface ProxiedBucket {
  s3: S3TestServer;
  proxy: FaultProxy;
  /** The gateway environment for this bucket, reached through the proxy. */
  env: Record<string, string>;
  /** Closes the proxy, then stops the S3 server. */
  close(): Promise<void>;
}

/** `seed`: the proxy's random decisions (which requests fail). */
export async function startProxiedBucket({ seed }: { seed?: number } = {}): Promise<ProxiedBucket> {
  const s3 = await startS3TestServer();
  const proxy = await startFaultProxy({ target: { host: "127.0.0.1", port: Number(new URL(s3.endpoint).port) }, seed });
  return {
    s3,
    proxy,
    env: s3GatewayEnv(s3, proxy.endpoint),
    close: async () => {
      await proxy.close();
      await s3.stop();
    },
  };
}

export interface ProxiedGateway extends ProxiedBucket {
  gateway: Gateway;
  /** Runs `body`; a failure gets the proxy's counts and the gateway's recent log added. */
  withLogs<T>(body: () => Promise<T>): Promise<T>;
}

/** A gateway on a proxied bucket; `env` comes on top of the bucket's. `close()` stops all of it. */
export async function startProxiedGateway({ seed, env, ...options }: StartGatewayOptions & { seed?: number } = {}): Promise<ProxiedGateway> {
  const bucket = await startProxiedBucket({ seed });
  let gateway: Gateway;
  try {
    gateway = await startGateway({ ...options, env: { ...bucket.env, ...env } });
  } catch (err) {
    await bucket.close();
    throw err;
  }
  return {
    ...bucket,
    gateway,
    withLogs: async (body) => {
      try {
        return await body();
      } catch (err) {
        if (err instanceof Error) err.message += `\nproxy: ${JSON.stringify(bucket.proxy.stats())}\n${describeLogs(gateway.logs())}`;
        throw err;
      }
    },
    close: async () => {
      await gateway.dispose();
      await bucket.close();
    },
  };
}
