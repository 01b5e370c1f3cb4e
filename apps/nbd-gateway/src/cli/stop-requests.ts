/**
 * Tells a request to stop from a demand to stop now. A terminal's Ctrl-C reaches every process of the
 * foreground group, and `npm start` and scripts/start.mjs each pass it on as well, so one key press can
 * arrive up to three times within milliseconds: copies that close together are the same request.
 */
export type StopRequest = "stop" | "copy" | "now";

/** Signals this close to the first are copies of it, not a second request. */
export const SAME_REQUEST_MS = 250;

export class StopRequests {
  #first: number | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  receive(): StopRequest {
    const at = this.now();
    if (this.#first === undefined) {
      this.#first = at;
      return "stop";
    }
    return at - this.#first < SAME_REQUEST_MS ? "copy" : "now";
  }
}
