// Eval reports: one report's tables and stored plot; two runs compared query by query.

import { getBlobURL, getJSON } from "./api.js";
import { fmt, h, shortDigest, table } from "./dom.js";

const artifactLink = (ref) => {
  const [name, digest] = (ref || "").split("@");
  return h("a", { href: `#/artifact?${new URLSearchParams({ name, digest: digest || "" })}` }, `${name}@${shortDigest(digest)}`);
};

export async function reportPage(container, params, current) {
  const view = await getJSON("/ui/api/report", { ref: params.ref });
  if (!current()) return;
  const report = view.report;
  const counts = report.counts || {};
  const latency = report.latency_ms || {};
  const engine = report.engine || {};
  container.append(...[
    h("h1", {}, "Eval report"),
    h("dl", { class: "facts" },
      h("dt", {}, "Report"), h("dd", {}, h("code", {}, view.ref)),
      h("dt", {}, "Target"), h("dd", {}, view.spec.target ? artifactLink(view.spec.target) : ""),
      h("dt", {}, "Dataset"), h("dd", {}, view.spec.dataset || ""),
      h("dt", {}, "Composition digest"), h("dd", {}, h("code", {}, view.spec.composition_digest || "")),
      h("dt", {}, "Created"), h("dd", {}, report.created || view.created || ""),
      engine.temperature !== undefined ? [h("dt", {}, "Engine"), h("dd", {}, `temperature ${engine.temperature}, max_tokens ${engine.max_tokens}, top_p ${engine.top_p}, seed ${engine.seed}`)] : null),
    h("div", { class: "scroll" }, table("Metrics", ["Metric", "Value", "Items"],
      Object.entries(report.metrics || {}).map(([k, v]) => [k, fmt(v), counts[k] ?? ""]), { id: "metrics" })),
    Object.keys(latency).length ? h("div", { class: "scroll" }, table("Latency (ms)", ["Step", "p50", "p90", "p99", "n"],
      Object.entries(latency).map(([k, v]) => [k, v.p50.toFixed(1), v.p90.toFixed(1), v.p99.toFixed(1), v.count]), { id: "latency" })) : null,
    counts.errors ? h("p", { role: "note" }, `${counts.errors} item(s) failed and are scored as misses.`) : null,
  ].filter(Boolean));  // Element.append would write a null as the text "null"
  if (view.plot) {
    const figure = h("figure", {}, h("figcaption", {}, "The report's plot, as stored"));
    container.append(figure);
    const url = await getBlobURL("/ui/api/file", { ref: view.ref, path: view.plot });
    if (!current()) return;
    figure.prepend(h("img", { id: "plot", src: url, alt: `metrics of ${view.name}: ${Object.entries(report.metrics || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")}` }));
  }
  container.append(h("p", {}, "Files: ", view.files.join(", ")));
}

export async function comparePage(container, params, current) {
  const view = await getJSON("/ui/api/compare", { a: params.a, b: params.b });
  if (!current()) return;
  const metrics = view.metrics.map((m) => m.metric);
  const signed = (d) => h("span", { class: d > 0 ? "up" : d < 0 ? "down" : "" }, `${d > 0 ? "+" : ""}${fmt(d)}`);
  container.append(
    h("h1", {}, "Compare two runs"),
    h("dl", { class: "facts" },
      h("dt", {}, "A"), h("dd", {}, h("code", {}, view.a.ref), ` on `, view.a.subject ? artifactLink(view.a.subject) : ""),
      h("dt", {}, "B"), h("dd", {}, h("code", {}, view.b.ref), ` on `, view.b.subject ? artifactLink(view.b.subject) : "")),
    h("div", { class: "scroll" }, table("Metrics (B − A; items B won and lost)", ["Metric", "A", "B", "Δ", "Won", "Lost"],
      view.metrics.map((m) => [m.metric, fmt(m.a), fmt(m.b), signed(m.delta), m.wins, m.losses]), { id: "compare-metrics" })),
    h("p", {}, `${view.paired} queries in both runs, largest changes first.`),
    h("div", { class: "scroll" }, table("Per-query deltas", ["Query", ...metrics.flatMap((m) => [`${m} A`, `${m} B`, `${m} Δ`])],
      view.items.map((item) => [item.id, ...metrics.flatMap((m) => {
        const d = item.scores[m];
        return d ? [fmt(d.a), fmt(d.b), signed(d.delta)] : ["", "", ""];
      })]), { id: "per-query" })),
  );
}
