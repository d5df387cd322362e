import type { ListedTaskRow } from "../backend/types.ts";
import type { Codec } from "./codec.ts";
import { type CutValue, type TaskRecord, toTaskRecord } from "./records.ts";

// Stands in for a value that was cut: never decoded (recognised by identity).
const CUT = new Uint8Array(0);

/**
 * A listed row as a record: values that fit in `previewBytes` decoded as usual, longer ones
 * left `undefined` and described in `cut` (their size, and their first bytes as text when the
 * codec writes text).
 */
export function toListedRecord<T>(
  row: ListedTaskRow,
  codec: Codec,
  previewBytes: number,
): TaskRecord<T> {
  const argsCut = (row.args_bytes ?? 0) > previewBytes;
  const resultCut = (row.result_bytes ?? 0) > previewBytes;
  if (!argsCut && !resultCut) return toTaskRecord<T>(row, codec);
  const skipping: Codec = {
    name: codec.name,
    encode: (value) => codec.encode(value),
    decode: (bytes) => bytes === CUT ? undefined : codec.decode(bytes),
  };
  const record = toTaskRecord<T>({
    ...row,
    args: argsCut ? CUT : row.args,
    last_result: resultCut ? CUT : row.last_result,
  }, skipping);
  const cut: NonNullable<TaskRecord["cut"]> = {};
  if (argsCut) cut.args = cutValue(row.args, row.args_bytes!, codec);
  if (resultCut) cut.lastResult = cutValue(row.last_result!, row.result_bytes!, codec);
  record.cut = cut;
  return record;
}

function cutValue(head: Uint8Array, bytes: number, codec: Codec): CutValue {
  if (codec.decodeText === undefined) return { bytes };
  // `stream` keeps back a character cut in the middle instead of showing U+FFFD for it.
  return { bytes, text: new TextDecoder().decode(head, { stream: true }) };
}
