import type { CliIo } from "./io.ts";

/**
 * A one-line live status on standard error, redrawn in place (`\r`) a few times a second while
 * the output is a terminal; silent otherwise. Lines logged through it are written above it.
 *
 * @example Usage
 * ```ts ignore
 * const line = new StatusLine(io, () => `${done} done`);
 * line.start();
 * line.log("task 01J… failed: exit code 3");
 * line.stop();
 * ```
 */
export class StatusLine {
  #io: CliIo;
  #render: () => string;
  #intervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #shown = false;

  /**
   * @param io where to draw (nothing is drawn unless `io.isTerminal`)
   * @param render returns the current status text
   * @param intervalMs how often to redraw
   */
  constructor(io: CliIo, render: () => string, intervalMs = 250) {
    this.#io = io;
    this.#render = render;
    this.#intervalMs = intervalMs;
  }

  /** Whether the line is drawn at all (a terminal). */
  get enabled(): boolean {
    return this.#io.isTerminal;
  }

  /** Draws the line now and then every interval. */
  start(): void {
    if (!this.enabled || this.#timer !== undefined) return;
    this.#draw();
    this.#timer = setInterval(() => this.#draw(), this.#intervalMs);
  }

  /** Writes `text` (one or more full lines) to standard error above the status line. */
  log(text: string): void {
    const line = text.endsWith("\n") ? text : `${text}\n`;
    if (this.#shown) {
      this.#io.stderr(`\r\x1b[2K${line}`);
      this.#draw();
    } else {
      this.#io.stderr(line);
    }
  }

  /** Stops redrawing and erases the line. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#shown) this.#io.stderr("\r\x1b[2K");
    this.#shown = false;
  }

  #draw(): void {
    this.#io.stderr(`\r\x1b[2K${this.#render()}`);
    this.#shown = true;
  }
}

/** A rate over a sliding window: how many events per second lately. */
export class RateMeter {
  #windowMs: number;
  #samples: { at: number; count: number }[] = [];

  /** @param windowMs how far back the rate looks */
  constructor(windowMs = 5000) {
    this.#windowMs = windowMs;
  }

  /** Records the running total `count` at time `now` (epoch ms). */
  sample(count: number, now: number = Date.now()): void {
    this.#samples.push({ at: now, count });
    while (this.#samples.length > 2 && this.#samples[1]!.at <= now - this.#windowMs) {
      this.#samples.shift();
    }
  }

  /** Events per second between the oldest sample in the window and the newest. */
  perSecond(): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.at <= first.at) return 0;
    return (last.count - first.count) / ((last.at - first.at) / 1000);
  }
}
