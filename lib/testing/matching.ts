/**
 * Whether `actual` has what `expected` describes: objects match when every key of `expected`
 * matches (other keys of `actual` are ignored, at any depth); arrays match element by element
 * and length; dates by time; anything else with `Object.is`.
 *
 * @example Usage
 * ```ts
 * import { matches } from "./matching.ts";
 * if (!matches({ to: "a@b.c", tags: ["x"] }, { to: "a@b.c" })) throw new Error("unexpected");
 * ```
 */
export function matches(actual: unknown, expected: unknown): boolean {
  if (Object.is(actual, expected)) return true;
  if (expected instanceof Date) {
    return actual instanceof Date && actual.getTime() === expected.getTime();
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length &&
      expected.every((item, i) => matches(actual[i], item));
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual)) return false;
    const record = actual as Record<string, unknown>;
    return Object.entries(expected).every(([key, value]) =>
      Object.hasOwn(record, key) && matches(record[key], value)
    );
  }
  return false;
}
