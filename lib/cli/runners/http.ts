import { excerpt, parseOutput, type Runner, RunnerError } from "./_output.ts";

/**
 * The `--http URL` runner: POSTs each task's payload as JSON with the headers
 * `X-Apalis-Task-Id`, `X-Apalis-Attempt` and `X-Apalis-Queue`, and resolves with the parsed body
 * of a 2xx answer. Any other status, or a network error, rejects with an `HttpError` naming the
 * status and the start of the body; an aborted attempt rejects with the abort reason.
 */
export function httpRunner(url: URL): Runner {
  return async (payload, { signal, taskId, attempt, queue }) => {
    let response: Response | undefined;
    let body: string;
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
      body = await response.text();
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
    if (response.ok) return parseOutput(body);
    const start = excerpt(body, "head");
    throw new RunnerError(
      "HttpError",
      `POST ${url} answered ${response.status}${
        response.statusText ? ` ${response.statusText}` : ""
      }${start === "" ? "" : `: ${start}`}`,
    );
  };
}
