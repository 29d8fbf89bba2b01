/**
 * A loopback TCP proxy in front of a server (for a peer's NATS connection), that a test can cut:
 * `cut()` destroys every proxied connection and refuses new ones until `heal()`, which is a network
 * partition of whoever connects through it (the NATS client then reconnects, refused, until the
 * heal). Listens on 127.0.0.1 only, on a free port.
 *
 * @module
 */

import * as net from "node:net";

/** A running proxy. */
export interface TcpProxy {
  /** `nats://127.0.0.1:<port>` of the proxy's own port. */
  readonly url: string;
  /** The proxy's port. */
  readonly port: number;
  /** True while cut. */
  readonly cut: boolean;
  /** Destroys every open connection and refuses new ones until {@linkcode TcpProxy.heal}. */
  cutOff(): void;
  /** Accepts connections again. */
  heal(): void;
  /** Closes the proxy and every connection. */
  close(): Promise<void>;
}

/**
 * Starts a proxy to `127.0.0.1:targetPort`.
 *
 * @example
 * ```ts ignore
 * const proxy = await startTcpProxy(server.port);
 * const transport = await NatsTransport.connect({ servers: proxy.url });
 * proxy.cutOff(); // the peer behind it is partitioned away
 * ```
 */
export function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  let isCut = false;
  const server = net.createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: "127.0.0.1", port: targetPort });
    open.add(client);
    open.add(upstream);
    const drop = (): void => {
      open.delete(client);
      open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise<TcpProxy>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      resolve({
        url: `nats://127.0.0.1:${port}`,
        port,
        get cut() {
          return isCut;
        },
        cutOff() {
          isCut = true;
          for (const socket of open) socket.destroy();
          open.clear();
        },
        heal() {
          isCut = false;
        },
        close() {
          isCut = true;
          for (const socket of open) socket.destroy();
          open.clear();
          return new Promise<void>((done) => server.close(() => done()));
        },
      });
    });
  });
}
