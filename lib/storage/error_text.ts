/**
 * Describes anything a handler throws, as text that is safe to store and show. Nothing here
 * throws: an error's fields may be of any type, getters that throw, or a `Proxy` that throws on
 * every access, and recording the failure must still work (the worker would otherwise crash and
 * leave the task `running`).
 *
 * @module
 */

/** An error as stored with a failed attempt. */
export interface TaskError {
  /** The error's class name, e.g. `"TypeError"`. */
  name: string;
  /** Its message. */
  message: string;
  /** Its stack, when it had one. */
  stack?: string;
}

/** What is stored when nothing at all can be read from a thrown value. */
const UNREADABLE = "[a value that cannot be read]";

/** Serialises an error (or any thrown value) for storage; never throws. */
export function serializeError(error: unknown): string {
  const record = errorRecord(error);
  // Every field is a string by now, so this cannot throw.
  return JSON.stringify(record);
}

/** The stored form of anything thrown: `NonError` for what is not an `Error`. */
export function errorRecord(error: unknown): TaskError {
  if (!isError(error)) return { name: "NonError", message: describeValue(error) };
  const stored: TaskError = {
    name: fieldText(error, "name", "Error"),
    message: fieldText(error, "message", ""),
  };
  const stack = read(error, "stack");
  if (stack.ok && typeof stack.value === "string" && stack.value !== "") stored.stack = stack.value;
  return stored;
}

/** The message of anything thrown; never throws. */
export function messageOf(error: unknown): string {
  return isError(error) ? fieldText(error, "message", "") : describeValue(error);
}

/** `Name: message` of an error, the description of anything else; never throws. */
export function describeError(error: unknown): string {
  if (!isError(error)) return describeValue(error);
  return `${fieldText(error, "name", "Error")}: ${fieldText(error, "message", "")}`;
}

/**
 * A short text naming any value: a string as it is, `undefined`, `10n`, `Symbol(x)`, JSON for
 * plain data, else what `String()` says; never throws.
 */
export function describeValue(value: unknown): string {
  try {
    switch (typeof value) {
      case "string":
        return value;
      case "undefined":
        return "undefined";
      case "bigint":
        return `${value}n`;
      case "symbol":
        return value.toString();
      case "function":
        return `[function ${
          typeof value.name === "string" && value.name ? value.name : "(anonymous)"
        }]`;
      case "object":
        if (value === null) return "null";
        break;
      default:
        return String(value);
    }
  } catch {
    return UNREADABLE;
  }
  try {
    const json = JSON.stringify(value);
    if (typeof json === "string") return json;
  } catch {
    // A cycle, a BigInt inside, a throwing getter or toJSON: try its own text.
  }
  try {
    const text = String(value);
    if (typeof text === "string") return text;
  } catch {
    // No toString (a null-prototype object), or one that throws.
  }
  return UNREADABLE;
}

/** Whether `value` is an `Error`; false for a `Proxy` that throws when asked. */
export function isError(value: unknown): value is Error {
  try {
    return value instanceof Error;
  } catch {
    return false;
  }
}

function read(object: object, key: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: (object as Record<string, unknown>)[key] };
  } catch {
    return { ok: false };
  }
}

/** A field of an error as text: described when it is not a string, `fallback` when unreadable. */
function fieldText(error: Error, key: "name" | "message", fallback: string): string {
  const field = read(error, key);
  if (!field.ok) return fallback === "" ? `[its ${key} cannot be read]` : fallback;
  if (typeof field.value === "string") return field.value;
  if (field.value === undefined) return fallback;
  return describeValue(field.value);
}
