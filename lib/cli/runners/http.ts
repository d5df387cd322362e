import { formatSize } from "../format.ts";
import {
  DEFAULT_MAX_OUTPUT,
  ERROR_TEXT_MAX,
  excerpt,
  parseOutput,
  type Runner,
  RunnerError,
} from "./output.ts";

/** Options of {@linkcode httpRunner}. */
export interface HttpRunnerOptions {
  /** The largest body of a 2xx answer, in bytes: past it the attempt fails. @default {16 MiB} */
  maxOutputBytes?: number;
}

/**
 * The `--http URL` runner: POSTs each task's payload as JSON with the headers
 * `X-Apalis-Task-Id`, `X-Apalis-Attempt` and `X-Apalis-Queue`, and resolves with the parsed body
 * of a 2xx answer. Any other status, or a network error, rejects with an `HttpError` naming the
 * status and the start of the body; an aborted attempt rejects with the abort reason.
 *
 * The body is read as a stream, never more than `maxOutputBytes` of it: a 2xx body announced or
 * found larger fails the attempt (the rest is not read; the connection is dropped). Of an error
 * answer only the start is read.
 *
 * @example Usage
 * ```ts ignore
 * const run = httpRunner(new URL("http://127.0.0.1:8080/hook"), { maxOutputBytes: 1024 ** 2 });
 * ```
 */
export function httpRunner(url: URL, options: HttpRunnerOptions = {}): Runner {
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  return async (payload, { signal, taskId, attempt, queue }) => {
    let response: Response | undefined;
    let body: BodyStart;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-apalis-task-id": taskId,
          "x-apalis-attempt": String(attempt),
          "x-apalis-queue": queue,
        },
        body: JSON.stringify(payload) ?? "null",
        signal,
      });
      if (response.ok && Number(response.headers.get("content-length")) > max) {
        await response.body?.cancel(); // announced too large: not read at all
        body = { text: "", truncated: true };
      } else {
        // Of an error answer only the start is kept (a UTF-8 character is at most 4 bytes).
        body = await readBody(response, response.ok ? max : 4 * ERROR_TEXT_MAX);
      }
    } catch (error) {
      signal.throwIfAborted();
      const message = error instanceof Error ? error.message : String(error);
      throw new RunnerError(
        "HttpError",
        response === undefined
          ? `POST ${url} failed: ${message}`
          : `POST ${url}: reading the ${response.status} response failed: ${message}`,
      );
    }
    const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
    if (response.ok) {
      if (body.truncated) {
        throw new RunnerError(
          "HttpError",
          `POST ${url} answered ${status} with a body over the ${
            formatSize(max)
          } limit (--max-output): not stored`,
        );
      }
      return parseOutput(body.text);
    }
    const start = body.truncated ? `${body.text}…` : excerpt(body.text, "head");
    throw new RunnerError(
      "HttpError",
      `POST ${url} answered ${status}${start === "" ? "" : `: ${start}`}`,
    );
  };
}

/** A response body read up to a limit. */
interface BodyStart {
  /** What was read, decoded as UTF-8 (for a truncated body: its start, cut to `ERROR_TEXT_MAX`). */
  text: string;
  /** Whether the body was larger than the limit (the rest was not read). */
  truncated: boolean;
}

/** Reads at most `limit` bytes of `response`'s body, and cancels the rest. */
async function readBody(response: Response, limit: number): Promise<BodyStart> {
  if (!response.body) return { text: "", truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    if (size + value.byteLength > limit) {
      chunks.push(value.subarray(0, limit - size));
      truncated = true;
      await reader.cancel();
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  const text = new TextDecoder().decode(bytes);
  return truncated
    ? { text: text.trim().slice(0, ERROR_TEXT_MAX), truncated }
    : { text, truncated };
}
