/** Requests and request bytes (reads and writes) one connection has in flight, against its limits. */
import { NBD_CMD_READ, NBD_CMD_WRITE } from "../protocol/constants";
import type { RequestHeader } from "../protocol/transmission-frames";

export class InFlight {
  requests = 0;
  bytes = 0;

  constructor(
    private readonly maxRequests: number,
    private readonly maxBytes: number,
  ) {}

  add(req: RequestHeader): void {
    this.requests++;
    if (req.type === NBD_CMD_READ || req.type === NBD_CMD_WRITE) this.bytes += req.length;
  }

  remove(req: RequestHeader): void {
    this.requests--;
    if (req.type === NBD_CMD_READ || req.type === NBD_CMD_WRITE) this.bytes -= req.length;
  }

  /** At a limit: stop reading requests. `unsent`: reply bytes the socket still holds. */
  full(unsent: number): boolean {
    return this.requests >= this.maxRequests || this.bytes + unsent >= this.maxBytes;
  }

  /** Below half of both limits, so reading resumes without flapping on every completion. */
  belowHalf(unsent: number): boolean {
    return !(this.requests * 2 > this.maxRequests || (this.bytes + unsent) * 2 > this.maxBytes);
  }
}
