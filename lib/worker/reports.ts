import type { LogWrite, ProgressWrite } from "../backend/types.ts";
import {
  cutLine,
  encodeProgress,
  lineBytes,
  MAX_LOG_BYTES,
  MAX_LOG_LINES,
  REPORT_INTERVAL_MS,
} from "../storage/reports.ts";

/**
 * What one attempt reported (`ctx.progress`, `ctx.log`) and the worker has not written yet: the
 * latest progress only, and the lines within the attempt's bounds.
 */
export class AttemptReports {
  /** The latest progress (JSON) not written yet. */
  progress: string | undefined;
  /** Lines not written yet, in order. */
  lines: { at: number; line: string }[] = [];
  #kept = 0;
  #bytes = 0;
  #dropped = 0;
  #closed = false;

  /**
   * @param id the task
   * @param attempt the attempt
   * @param buffer the worker's buffer, told when there is something to write
   * @param now the worker's clock
   */
  constructor(
    readonly id: string,
    readonly attempt: number,
    private readonly buffer: ReportBuffer,
    private readonly now: () => number,
  ) {}

  /** Keeps a progress value (validated first: a bad one throws and keeps nothing). */
  setProgress(value: unknown): void {
    const json = encodeProgress(value);
    if (this.#closed) return;
    this.progress = json;
    this.buffer.mark(this);
  }

  /** Keeps a log line, within the attempt's bounds (a marker says when lines are dropped). */
  log(message: unknown): void {
    if (typeof message !== "string") {
      throw new TypeError(
        `ctx.log() takes a string, not ${message === null ? "null" : typeof message}`,
      );
    }
    if (this.#closed) return;
    const line = cutLine(message);
    const bytes = lineBytes(line);
    if (this.#kept >= MAX_LOG_LINES || this.#bytes + bytes > MAX_LOG_BYTES) {
      if (this.#dropped++ === 0) {
        this.#append(
          `[apalis] log limit reached (${MAX_LOG_LINES} lines or ${
            MAX_LOG_BYTES / 1024
          } KiB per attempt): later lines of this attempt are dropped`,
        );
      }
      return;
    }
    this.#kept++;
    this.#bytes += bytes;
    this.#append(line);
  }

  /** The attempt ended: later reports are ignored; says how many lines were dropped, if any. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#dropped > 0) {
      this.#append(`[apalis] ${this.#dropped} line${this.#dropped === 1 ? "" : "s"} dropped`);
    }
  }

  #append(line: string): void {
    this.lines.push({ at: this.now(), line });
    this.buffer.mark(this);
  }
}

/** Reports taken for a flush, to give back if it fails. */
export interface TakenReports {
  progress?: ProgressWrite[];
  logs?: LogWrite[];
  from: { reports: AttemptReports; progress: string | undefined; lines: AttemptReports["lines"] }[];
}

/**
 * The worker's unwritten reports. They ride along with the worker's flushes; while none happens
 * (a long task), the buffer asks for one at most every `REPORT_INTERVAL_MS`.
 */
export class ReportBuffer {
  #pending = new Set<AttemptReports>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due = false;

  /** @param onDue called when reports have waited long enough: the worker flushes */
  constructor(private readonly onDue: () => void) {}

  /** Whether reports have waited long enough to be written on their own. */
  get due(): boolean {
    return this.#due && this.#pending.size > 0;
  }

  /** Notes that `reports` has something to write. */
  mark(reports: AttemptReports): void {
    this.#pending.add(reports);
    if (this.#timer !== undefined || this.#due) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#due = true;
      this.onDue();
    }, REPORT_INTERVAL_MS);
  }

  /** Takes everything unwritten for a flush; undefined when there is nothing. */
  take(): TakenReports | undefined {
    if (this.#pending.size === 0) return undefined;
    this.#due = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const taken: TakenReports = { from: [] };
    for (const reports of this.#pending) {
      const { progress, lines } = reports;
      if (progress !== undefined) {
        (taken.progress ??= []).push({ id: reports.id, attempt: reports.attempt, value: progress });
      }
      if (lines.length > 0) {
        (taken.logs ??= []).push({ id: reports.id, attempt: reports.attempt, lines });
      }
      taken.from.push({ reports, progress, lines });
      reports.progress = undefined;
      reports.lines = [];
    }
    this.#pending.clear();
    return taken;
  }

  /** Gives back reports a failed flush did not write (a newer progress wins). */
  restore(taken: TakenReports): void {
    for (const { reports, progress, lines } of taken.from) {
      reports.progress ??= progress;
      reports.lines = lines.concat(reports.lines);
      this.mark(reports);
    }
  }

  /** Stops the timer (the worker exits). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
