/**
 * An import job's progress as the volume page shows it: bytes done of the total, the rate over the
 * current phase and the time left. Downloading counts source bytes through `counter()`; converting a
 * staged qcow2 takes nbdcopy's percent of the virtual size. Published to the job at most once a tick.
 */
import { Transform } from "node:stream";
import type { ImportVolumeProgress } from "@stratus/control/jobs";

export class ImportMeter {
  #phase: ImportVolumeProgress["phase"] = "downloading";
  #done = 0;
  #total = 0;
  #phaseStarted: number;
  #published = "";
  /** Source bytes read so far (whatever the phase). */
  bytesDone = 0;

  constructor(
    private readonly source: string,
    private readonly sink: (progress: ImportVolumeProgress) => Promise<unknown>,
    private readonly now: () => number = Date.now,
  ) {
    this.#phaseStarted = now();
  }

  /** A pass-through that counts the source's bytes into the downloading phase. */
  counter(totalBytes: number): Transform {
    this.#total = totalBytes;
    return new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        this.bytesDone += chunk.length;
        if (this.#phase === "downloading") this.#done = this.bytesDone;
        callback(null, chunk);
      },
    });
  }

  phase(phase: ImportVolumeProgress["phase"], totalBytes: number): void {
    this.#phase = phase;
    this.#total = totalBytes;
    this.#done = 0;
    this.#phaseStarted = this.now();
  }

  /** nbdcopy's 0–100 while converting. */
  converted(percent: number): void {
    this.#done = Math.round((this.#total * percent) / 100);
  }

  snapshot(): ImportVolumeProgress {
    const seconds = (this.now() - this.#phaseStarted) / 1000;
    const rate = seconds > 0 ? Math.round(this.#done / seconds) : 0;
    const left = this.#total - this.#done;
    return {
      phase: this.#phase,
      bytesDone: this.#done,
      bytesTotal: this.#total,
      rateBytesPerSecond: rate,
      etaSeconds: rate > 0 ? Math.ceil(left / rate) : undefined,
      source: this.source,
    };
  }

  /** Sends the current progress unless nothing changed since the last one sent. */
  async publish(): Promise<void> {
    const progress = this.snapshot();
    const key = `${progress.phase}:${progress.bytesDone}:${progress.bytesTotal}`;
    if (key === this.#published) return;
    this.#published = key;
    await this.sink(progress);
  }
}
