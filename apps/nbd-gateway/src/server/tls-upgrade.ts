/**
 * The server side of NBD_OPT_STARTTLS: after the ACK the plain socket is wrapped in a TLSSocket (TLS
 * 1.2 at least) that accepts either client credential on the same port, TLS-PSK or a certificate
 * chaining to the CA, and reports which one the client proved; whether it may still be used is the
 * caller's question. TLS reads arrive as 'data' events: TLS owns the handle socket-reads.ts reads.
 */
import { X509Certificate, createHash } from "node:crypto";
import type net from "node:net";
import tls from "node:tls";

export interface TlsServerCredentials {
  /** The server's certificate (chain) and key, PEM. */
  certPem: string;
  keyPem: string;
  /** The CA client certificates must chain to, PEM. */
  caPem: string;
  /** The PSK of an identity, or undefined when there is no such identity. Called during the handshake: synchronous. */
  pskKey(identity: string): Buffer | undefined;
}

/** What a completed TLS handshake proved about the client. */
export type PresentedCredential = { pskIdentity: string } | { certFingerprintSha256: string };

export class TlsRefusedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TlsRefusedError";
  }
}

/**
 * TLS 1.3 suites with SHA-256 first, in our order: OpenSSL picks the suite before it looks at an offered
 * PSK, and an external PSK (Node's pskCallback) works only with a SHA-256 suite. GnuTLS clients put
 * AES-256/SHA-384 first, which would silently turn a PSK client into a certificate handshake it has no
 * credentials for. TLS-PSK is therefore a TLS 1.3 feature here; certificates work from TLS 1.2.
 */
const CIPHERS = ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_256_GCM_SHA384", tls.DEFAULT_CIPHERS].join(":");

export class TlsUpgrader {
  readonly #context: tls.SecureContext;
  readonly #pskKey: (identity: string) => Buffer | undefined;
  readonly #ca: X509Certificate;

  constructor(credentials: TlsServerCredentials) {
    this.#context = tls.createSecureContext({
      cert: credentials.certPem,
      key: credentials.keyPem,
      ca: credentials.caPem,
      minVersion: "TLSv1.2",
      ciphers: CIPHERS,
      honorCipherOrder: true,
      // OpenSSL treats a TLS 1.3 PSK like a resumed session, which needs a session id context once
      // client certificates are requested (tls.createServer sets one; a bare TLSSocket must).
      sessionIdContext: "stratus-nbd",
    });
    this.#pskKey = credentials.pskKey;
    this.#ca = new X509Certificate(credentials.caPem);
  }

  /**
   * A bare server TLSSocket records OpenSSL's verdict on the client's chain nowhere public (only
   * tls.Server sets `authorized`), so the chain is checked here: the deployment CA signs client
   * certificates directly.
   */
  #chainProblem(raw: Buffer, now = new Date()): string | undefined {
    const cert = new X509Certificate(raw);
    if (!cert.checkIssued(this.#ca) || !cert.verify(this.#ca.publicKey)) return "the client certificate is not signed by the deployment CA";
    if (cert.ca) return "the client certificate is a CA certificate";
    if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) return "the client certificate is expired or not yet valid";
    return undefined;
  }

  /**
   * Wraps `raw` (paused, with nothing unread in it) and runs the handshake. Returns the TLS socket at
   * once (the caller routes its events) and `secured`: the credential the client proved, rejecting
   * with TlsRefusedError when the handshake fails or proves nothing.
   */
  upgrade(raw: net.Socket): { socket: tls.TLSSocket; secured: Promise<PresentedCredential> } {
    let pskIdentity: string | undefined;
    // Node reads pskCallback from a server TLSSocket's options too; its typings list it only for servers.
    const options: tls.TLSSocketOptions & Pick<tls.TlsOptions, "pskCallback"> = {
      isServer: true,
      secureContext: this.#context,
      // Ask for a certificate, and judge it (or its absence, with PSK) below rather than in OpenSSL:
      // a PSK client sends none.
      requestCert: true,
      rejectUnauthorized: false,
      pskCallback: (_socket: tls.TLSSocket, identity: string) => {
        const key = this.#pskKey(identity);
        if (key === undefined) return null;
        pskIdentity = identity;
        return key;
      },
    };
    const socket = new tls.TLSSocket(raw, options);
    const secured = new Promise<PresentedCredential>((resolve, reject) => {
      const fail = (error: Error) => reject(new TlsRefusedError(`TLS handshake failed: ${error.message}`, { cause: error }));
      const closed = () => reject(new TlsRefusedError("the client left during the TLS handshake"));
      socket.once("error", fail);
      socket.once("close", closed);
      socket.once("secure", () => {
        socket.off("error", fail);
        socket.off("close", closed);
        if (pskIdentity !== undefined) {
          resolve({ pskIdentity });
          return;
        }
        const peer = socket.getPeerCertificate(false);
        if (!peer || !peer.raw) {
          reject(new TlsRefusedError("the client presented neither a PSK identity nor a certificate"));
          return;
        }
        const problem = this.#chainProblem(peer.raw);
        if (problem) {
          reject(new TlsRefusedError(problem));
          return;
        }
        resolve({ certFingerprintSha256: createHash("sha256").update(peer.raw).digest("hex") });
      });
    });
    // The caller may stop listening once secured settles; an unobserved rejection must not crash the process.
    secured.catch(() => undefined);
    return { socket, secured };
  }
}
