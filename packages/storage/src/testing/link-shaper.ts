/**
 * A WAN-shaped link for the fault proxy: a fixed delay before data goes on, and a speed limit shared
 * by every connection in one direction (a token bucket on bytes), so a bench on loopback sees what a
 * client of a distant object store sees: round trips that cost, and a link that fills.
 */
import type net from "node:net";
import { systemClock, type Clock, type ClockTimer } from "../util/clock";

/** One direction of the link: bytes leave in order at `bytesPerSecond`, after a burst of `burstBytes`. */
export class LinkShaper {
  /** When (ms, on `clock`) the link has carried everything queued on it so far. */
  #freeAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly bytesPerSecond: number,
    private readonly burstBytes = 64 * 1024,
    private readonly clock: Clock = systemClock,
  ) {
    if (!(bytesPerSecond > 0)) throw new Error(`link speed must be positive, got ${bytesPerSecond}`);
  }

  /** Queues `bytes` on the link; returns the milliseconds until they have crossed it. */
  take(bytes: number): number {
    const now = this.clock.now();
    // A bucket holding at most burstBytes of tokens: an idle link lends no more than that.
    const start = Math.max(this.#freeAt, now - (this.burstBytes / this.bytesPerSecond) * 1000);
    this.#freeAt = start + (bytes / this.bytesPerSecond) * 1000;
    return Math.max(0, this.#freeAt - now);
  }
}

interface Entry {
  due: number;
  data: Buffer | undefined; // undefined: the end of the stream
}

/**
 * One connection's bytes in one direction: each piece is handed on `latencyMs` after it came plus
 * the time the shared link takes to carry it, in the order it came. Its source is paused while more
 * than `highWaterBytes` wait, as a TCP window would hold the sender back.
 */
export class DelayLine {
  readonly #queue: Entry[] = [];
  #queuedBytes = 0;
  #timer: ClockTimer | undefined;
  #paused = false;
  #closed = false;

  constructor(
    private readonly options: {
      latencyMs: number;
      link: LinkShaper | undefined;
      source: () => net.Socket | undefined;
      deliver: (data: Buffer) => void;
      end: () => void;
      highWaterBytes?: number;
      clock?: Clock;
    },
  ) {}

  /** Whether pieces pass at once (no delay, no link): then push() hands them on synchronously. */
  get direct(): boolean {
    return this.options.latencyMs <= 0 && this.options.link === undefined;
  }

  push(data: Buffer): void {
    if (this.#closed) return;
    if (this.direct && this.#queue.length === 0) return this.options.deliver(data);
    const carry = this.options.link?.take(data.length) ?? 0;
    this.#enqueue({ due: this.#now() + this.options.latencyMs + carry, data });
    this.#queuedBytes += data.length;
    if (!this.#paused && this.#queuedBytes > (this.options.highWaterBytes ?? 4 * 2 ** 20)) {
      this.#paused = true;
      this.options.source()?.pause();
    }
  }

  /** The source ended: the end follows the bytes still on their way. */
  end(): void {
    if (this.#closed) return;
    if (this.direct && this.#queue.length === 0) return this.options.end();
    this.#enqueue({ due: this.#now() + this.options.latencyMs, data: undefined });
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#queue.length = 0;
  }

  #enqueue(entry: Entry): void {
    // Never before the piece ahead of it: the order of a byte stream is kept whatever the delays.
    const last = this.#queue.at(-1);
    if (last !== undefined && entry.due < last.due) entry.due = last.due;
    this.#queue.push(entry);
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    const head = this.#queue[0];
    if (head === undefined) return;
    this.#timer = this.#clock.setTimer(() => this.#drain(), Math.max(0, head.due - this.#now()));
  }

  get #clock(): Clock {
    return this.options.clock ?? systemClock;
  }

  #now(): number {
    return this.#clock.now();
  }

  #drain(): void {
    this.#timer = undefined;
    const now = this.#now();
    while (!this.#closed && this.#queue.length > 0 && this.#queue[0]!.due <= now) {
      const { data } = this.#queue.shift()!;
      if (data === undefined) {
        this.options.end();
        continue;
      }
      this.#queuedBytes -= data.length;
      this.options.deliver(data);
    }
    if (this.#closed) return;
    if (this.#paused && this.#queuedBytes <= (this.options.highWaterBytes ?? 4 * 2 ** 20) / 2) {
      this.#paused = false;
      this.options.source()?.resume();
    }
    this.#arm();
  }
}
