// Usage: the caller's project, tokens by day and by model over 30 days, as bar charts.

import { getJSON } from "./api.js";
import { h, s, table } from "./dom.js";

function bars(title, rows, id) {
  const max = Math.max(1, ...rows.map((r) => r.total_tokens));
  const W = 640, row = 26, label = 170, height = rows.length * row + 10;
  return h("figure", { class: "chart" },
    s("svg", { id, role: "img", "aria-label": `${title}: ${rows.map((r) => `${r.group} ${r.total_tokens}`).join(", ")}`, viewBox: `0 0 ${W} ${height}`, width: W, height },
      rows.map((r, i) => {
        const w = ((W - label - 80) * r.total_tokens) / max;
        const p = ((W - label - 80) * r.prompt_tokens) / max;
        return s("g", {},
          s("text", { x: label - 6, y: i * row + 18, "text-anchor": "end" }, r.group || "(none)"),
          s("rect", { x: label, y: i * row + 5, width: p, height: row - 8, class: "prompt" }),
          s("rect", { x: label + p, y: i * row + 5, width: w - p, height: row - 8, class: "completion" }),
          s("text", { x: label + w + 6, y: i * row + 18 }, String(r.total_tokens)));
      })),
    h("figcaption", {}, `${title} (`, h("span", { class: "key prompt" }, "prompt"), " and ", h("span", { class: "key completion" }, "completion"), " tokens)"));
}

export async function usagePage(container, params, current) {
  const [byDay, byModel] = await Promise.all([getJSON("/v1/usage", { by: "day" }), getJSON("/v1/usage", { by: "model" })]);
  if (!current()) return;
  const rows = (data) => data.map((r) => [r.group, r.requests, r.prompt_tokens, r.completion_tokens, r.total_tokens, r.errors]);
  const headers = ["", "Requests", "Prompt tokens", "Completion tokens", "Total", "Errors"];
  container.append(...[
    h("h1", {}, `Usage of project ${byDay.project}`),
    h("p", {}, "The last 30 days, from the usage ledger."),
    byDay.data.length ? bars("Tokens by day", byDay.data, "usage-by-day") : h("p", {}, "No requests recorded."),
    byModel.data.length ? bars("Tokens by model", byModel.data, "usage-by-model") : null,
    h("div", { class: "scroll" }, table("By day", ["Day", ...headers.slice(1)], rows(byDay.data), { id: "usage-days" })),
    h("div", { class: "scroll" }, table("By model", ["Model", ...headers.slice(1)], rows(byModel.data), { id: "usage-models" })),
  ].filter(Boolean));
}
