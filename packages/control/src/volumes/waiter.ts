/** A sleep that a reply can cut short (waits on the lease channel poll the lease row meanwhile). */
export class Waiter {
  #wake: (() => void) | undefined;
  wake(): void {
    this.#wake?.();
  }
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}
