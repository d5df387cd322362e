import { MAX_LOG_LINE_BYTES } from "../../../mod.ts";

/**
 * Splits text that arrives in chunks (a command's stderr) into lines, calling `onLine` for each
 * complete one as it comes (without its `\n` or `\r\n`); `end()` passes on a last line that has
 * no newline. A line longer than a log line keeps (4 KiB) is passed on cut, once, and the rest of
 * it is skipped, so that a command writing without newlines does not fill memory.
 */
export class LineSplitter {
  #partial = "";
  #skipping = false;

  /** @param onLine called with each line */
  constructor(private readonly onLine: (line: string) => void) {}

  /** Takes a chunk. */
  push(chunk: string): void {
    let start = 0;
    while (true) {
      const newline = chunk.indexOf("\n", start);
      if (newline === -1) break;
      const piece = chunk.slice(start, newline);
      if (!this.#skipping) this.#emit(this.#partial + piece);
      this.#partial = "";
      this.#skipping = false;
      start = newline + 1;
    }
    if (this.#skipping) return;
    this.#partial += chunk.slice(start);
    if (this.#partial.length > MAX_LOG_LINE_BYTES) {
      this.#emit(this.#partial);
      this.#partial = "";
      this.#skipping = true;
    }
  }

  /** The input ended: passes on the last line if it had no newline. */
  end(): void {
    if (this.#partial !== "" && !this.#skipping) this.#emit(this.#partial);
    this.#partial = "";
  }

  #emit(line: string): void {
    this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  }
}
