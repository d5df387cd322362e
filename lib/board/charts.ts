import type { WorkflowGraph } from "../../mod.ts";
import type { MinuteCounts, NodeState } from "./data.ts";
import { type Html, html } from "./html.ts";

/**
 * Outcomes per minute as bars: done at the bottom, failed attempts and killed tasks stacked on
 * top. Each bar has a tooltip with its figures.
 */
export function throughputChart(
  minutes: readonly MinuteCounts[],
  size: { width: number; height: number; labels?: boolean },
): Html {
  const { width, height } = size;
  const top = size.labels ? 14 : 1;
  const bottom = size.labels ? 14 : 1;
  const plot = height - top - bottom;
  const max = Math.max(1, ...minutes.map((m) => m.done + m.failed + m.killed));
  const slot = width / Math.max(1, minutes.length);
  const bar = Math.max(1, slot - (slot > 3 ? 1 : 0));
  const width1 = bar.toFixed(1);
  /** One bar segment of `height` ending at `bottom` (nothing when it is empty). */
  const segment = (cls: string, x: string, bottom: number, height: number) =>
    height > 0
      ? html`
        <rect class="${cls}" x="${x}" y="${(bottom - height).toFixed(1)}" width="${width1}"
          height="${height.toFixed(1)}"></rect>
      `
      : "";
  const bars = minutes.map((m, i) => {
    const x = (i * slot).toFixed(1);
    const done = (m.done / max) * plot;
    const bad = ((m.failed + m.killed) / max) * plot;
    const time = new Date(m.minute).toISOString().slice(11, 16);
    return html`<g><title>${time} UTC: ${m.done} done, ${m.failed} failed, ${m.killed} killed</title>
      <rect class="bar-slot" x="${x}" y="${top}" width="${width1}" height="${plot}"></rect>
      ${segment("bar-done", x, top + plot, done)}${
      segment("bar-failed", x, top + plot - done, bad)
    }</g>`;
  });
  const labels = size.labels && minutes.length > 0
    ? html`
      <text class="axis" x="0" y="10">${max}/min</text>
      <text class="axis" x="0" y="${height - 2}">${new Date(minutes[0]!.minute).toISOString().slice(
        11,
        16,
      )}</text>
      <text class="axis" x="${width}" y="${height - 2}" text-anchor="end">${new Date(
        minutes[minutes.length - 1]!.minute,
      ).toISOString().slice(11, 16)} UTC</text>
    `
    : "";
  return html`
    <svg class="${size.labels
      ? "chart wide"
      : "chart"}" viewBox="0 0 ${width} ${height}" width="${width}"
      height="${height}"
      role="img" aria-label="done and failed per minute, last hour">${bars}${labels}</svg>
  `;
}

const NODE_W = 160;
const NODE_H = 36;
const GAP_X = 56;
const GAP_Y = 18;
const PAD = 12;

/**
 * A workflow run's graph as SVG: nodes in columns by depth (longest path from an entry), edges
 * left to right, each node coloured by its state and linked to its latest task.
 */
export function runGraph(
  graph: WorkflowGraph,
  states: Record<string, NodeState>,
  links: Record<string, string>,
): Html {
  const depth = new Map<string, number>();
  const incoming = new Map(graph.nodes.map((node) => [node.key, [] as string[]]));
  for (const [from, to] of graph.edges) incoming.get(to)?.push(from);
  const depthOf = (key: string, seen = new Set<string>()): number => {
    const known = depth.get(key);
    if (known !== undefined) return known;
    if (seen.has(key)) return 0; // a cycle cannot be stored by a validated flow; do not loop
    seen.add(key);
    const parents = incoming.get(key) ?? [];
    const d = parents.length === 0 ? 0 : 1 + Math.max(...parents.map((p) => depthOf(p, seen)));
    depth.set(key, d);
    return d;
  };
  const columns: string[][] = [];
  for (const node of graph.nodes) (columns[depthOf(node.key)] ??= []).push(node.key);
  const position = new Map<string, { x: number; y: number }>();
  const rows = Math.max(1, ...columns.map((c) => c?.length ?? 0));
  const height = PAD * 2 + rows * NODE_H + (rows - 1) * GAP_Y;
  columns.forEach((keys, col) => {
    const used = keys.length * NODE_H + (keys.length - 1) * GAP_Y;
    const offset = (height - used) / 2;
    keys.forEach((key, row) => {
      position.set(key, { x: PAD + col * (NODE_W + GAP_X), y: offset + row * (NODE_H + GAP_Y) });
    });
  });
  const width = PAD * 2 + columns.length * NODE_W + Math.max(0, columns.length - 1) * GAP_X;
  const edges = graph.edges.map(([from, to]) => {
    const a = position.get(from);
    const b = position.get(to);
    if (!a || !b) return "";
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x - 4;
    const y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    return html`
      <path class="edge"
        d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}"
        marker-end="url(#arrow)"></path>
    `;
  });
  const nodes = graph.nodes.map((node) => {
    const at = position.get(node.key)!;
    const state = states[node.key] ?? "waiting";
    const label = node.label.length > 22 ? `${node.label.slice(0, 21)}…` : node.label;
    const box = html`
      <g class="node n-${state}" data-node="${node.key}">
        <title>${node.label}: ${state}</title>
        <rect x="${at.x}" y="${at.y}" width="${NODE_W}" height="${NODE_H}" rx="6"></rect>
        <text x="${at.x + NODE_W / 2}" y="${at.y + NODE_H / 2 +
          4}" text-anchor="middle">${label}</text>
      </g>
    `;
    const link = links[node.key];
    return link ? html`<a href="${link}">${box}</a>` : box;
  });
  return html`
    <svg class="graph" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"
      role="img" aria-label="workflow graph">
        <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrow"></path></marker></defs>
        ${edges}${nodes}</svg>
  `;
}
