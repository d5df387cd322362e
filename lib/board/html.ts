/** HTML that is already safe: produced by {@linkcode html} or marked with {@linkcode raw}. */
export class Html {
  /** The markup. */
  readonly text: string;
  /** @param text markup to trust as it is */
  constructor(text: string) {
    this.text = text;
  }
  /** The markup, for string contexts. */
  toString(): string {
    return this.text;
  }
}

/** A value `html` can interpolate: text is escaped, `Html` is kept, lists are joined. */
export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | HtmlValue[];

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;",
};

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/** Marks markup as safe. Only for markup built here, never for data. */
export function raw(text: string): Html {
  return new Html(text);
}

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === null || value === undefined || value === false) return "";
  return escapeHtml(String(value));
}

/**
 * The board's only way to build markup: every interpolated value is escaped unless it is
 * `Html`, so a payload such as `<script>` can only ever show up as text.
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}
