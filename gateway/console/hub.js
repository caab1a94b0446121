// The hub browser: artifacts by kind and namespace, one artifact's versions, a lock as a graph, a diff.

import { getJSON } from "./api.js";
import { bytes, fmt, h, shortDigest, table } from "./dom.js";
import { lockGraph } from "./graph.js";

const PAGE_ROWS = 100;  // a longer table costs more to lay out than it helps: search narrows it
const link = (name) => `#/artifact?${new URLSearchParams({ name })}`;

export async function hubPage(container, params, current) {
  const kind = h("select", { id: "f-kind", name: "kind" }, h("option", { value: "" }, "all kinds"));
  const namespace = h("select", { id: "f-ns", name: "namespace" }, h("option", { value: "" }, "all namespaces"));
  const search = h("input", { id: "f-q", name: "q", type: "search", value: params.q || "", placeholder: "name or tag" });
  const count = h("p", { id: "hub-count", role: "status" });
  const list = h("div", { class: "scroll" });
  container.append(
    h("h1", {}, "Hub"),
    h("form", { class: "filters", role: "search", onsubmit: (e) => e.preventDefault() },
      h("label", { for: "f-kind" }, "Kind"), kind,
      h("label", { for: "f-ns" }, "Namespace"), namespace,
      h("label", { for: "f-q" }, "Search"), search),
    count, list,
  );
  let first = true, asked = 0;
  async function load(all = false) {
    const mine = ++asked;  // typing fast: only the newest answer is shown
    const filters = { kind: kind.value, namespace: namespace.value, q: search.value };
    const body = await getJSON("/ui/api/artifacts", all ? filters : { ...filters, limit: PAGE_ROWS });
    if (!current() || mine !== asked) return;
    if (first) {
      kind.append(...body.kinds.map((k) => h("option", { value: k, selected: k === params.kind }, k)));
      namespace.append(...body.namespaces.map((n) => h("option", { value: n, selected: n === params.namespace }, n || "(none)")));
      first = false;
      if (params.kind || params.namespace) return load(all);
    }
    const shown = body.data.length;
    count.textContent = shown < body.total ? `${body.total} artifacts, the first ${shown} shown` : `${shown} artifact${shown === 1 ? "" : "s"}`;
    const more = shown < body.total
      ? h("button", { type: "button", id: "show-all", onclick: () => load(true) }, `Show all ${body.total}`)
      : "";
    list.replaceChildren(table("Artifacts", ["Name", "Kind", "Tags", "Versions", "Updated"],
      body.data.map((a) => [
        h("a", { href: link(a.name) }, a.name),
        h("span", { class: `kind kind-${a.kind}` }, a.kind),
        a.tags.map((t) => h("span", { class: "tag", title: t.digest }, t.tag)),
        a.versions,
        (a.updated || "").replace("T", " ").replace("+00:00", ""),
      ]), { id: "artifacts" }), more);
  }
  let timer;
  const later = () => { clearTimeout(timer); timer = setTimeout(() => load(), 150); };
  kind.addEventListener("change", () => load());
  namespace.addEventListener("change", () => load());
  search.addEventListener("input", later);
  await load();
}

function versionLabel(v) {
  return `${shortDigest(v.digest)}${v.tags.length ? ` (${v.tags.join(", ")})` : ""}`;
}

function referrersTable(version) {
  if (!version.referrers.length) return h("p", {}, "No eval reports attached to this version.");
  const chosen = new Set();
  const button = h("button", { type: "button", disabled: true, id: "compare-selected",
    onclick: () => { const [a, b] = [...chosen]; location.hash = `#/compare?${new URLSearchParams({ a, b })}`; } },
  "Compare the two selected");
  const rows = version.referrers.map((r, i) => {
    const box = h("input", { type: "checkbox", id: `cmp-${i}`, "aria-label": `select ${shortDigest(r.digest)} for comparison`,
      onchange: (e) => { e.target.checked ? chosen.add(r.ref) : chosen.delete(r.ref); button.disabled = chosen.size !== 2; } });
    return [
      h("a", { href: `#/report?${new URLSearchParams({ ref: r.ref })}` }, `${r.name}@${shortDigest(r.digest)}`),
      (r.created || "").replace("T", " "),
      r.dataset ? h("span", { title: r.dataset }, `${r.dataset.split("@")[0]}@${shortDigest(r.dataset.split("@")[1])}`) : "",
      h("dl", { class: "metrics" }, Object.entries(r.headline).map(([k, v]) => [h("dt", {}, k), h("dd", {}, fmt(v))])),
      box,
    ];
  });
  return h("div", {}, h("div", { class: "scroll" }, table("Eval reports of this version", ["Report", "Created", "Dataset", "Headline metrics", "Compare"], rows, { id: "referrers" })), button);
}

function diffForm(detail) {
  if (detail.versions.length < 2) return null;
  const options = (selected) => detail.versions.map((v, i) => h("option", { value: v.ref, selected: i === selected }, versionLabel(v)));
  const a = h("select", { id: "diff-a" }, options(1));
  const b = h("select", { id: "diff-b" }, options(0));
  return h("form", { class: "filters", id: "diff-form", onsubmit: (e) => {
    e.preventDefault();
    location.hash = `#/diff?${new URLSearchParams({ a: a.value, b: b.value })}`;
  } },
  h("label", { for: "diff-a" }, "From"), a, h("label", { for: "diff-b" }, "to"), b, h("button", { type: "submit" }, "Diff specs"));
}

export async function artifactPage(container, params, current) {
  const detail = await getJSON("/ui/api/artifact", { name: params.name });
  if (!current()) return;
  const index = Math.max(0, detail.versions.findIndex((v) => v.digest === params.digest));
  const version = detail.versions[index];
  const picker = h("select", { id: "version", onchange: (e) => {
    location.hash = `#/artifact?${new URLSearchParams({ name: detail.name, digest: e.target.value })}`;
  } }, detail.versions.map((v, i) => h("option", { value: v.digest, selected: i === index }, versionLabel(v))));
  container.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/hub" }, "Hub"), " / ",
      h("a", { href: `#/hub?${new URLSearchParams({ namespace: detail.namespace })}` }, detail.namespace || "(none)")),
    h("h1", {}, detail.name, " ", h("span", { class: `kind kind-${detail.kind}` }, detail.kind)),
    h("div", { class: "filters" }, h("label", { for: "version" }, "Version"), picker),
    h("dl", { class: "facts", id: "facts" },
      h("dt", {}, "Digest"), h("dd", {}, h("code", {}, version.digest)),
      h("dt", {}, "Tags"), h("dd", {}, version.tags.length ? version.tags.map((t) => h("span", { class: "tag" }, t)) : "untagged",
        h("small", {}, " (current tags; the hub does not record earlier positions)")),
      h("dt", {}, "Created"), h("dd", {}, version.created || ""),
      h("dt", {}, "Size"), h("dd", {}, bytes(version.size)),
      h("dt", {}, "Versions"), h("dd", {}, String(detail.versions.length))),
  );
  if (detail.kind === "pipeline" || detail.kind === "agent") {
    const graph = h("section", { "aria-labelledby": "lock-title" }, h("h2", { id: "lock-title" }, "Composition lock"));
    container.append(graph);
    try {
      const lock = await getJSON("/ui/api/lock", { ref: version.ref });
      if (!current()) return;
      graph.append(h("p", {}, "Composition digest ", h("code", { id: "composition-digest" }, lock.composition_digest)), lockGraph(lock));
      const model = detail.kind === "pipeline" ? `rag/${detail.name.split("/").pop()}` : `agent/${detail.name.split("/").pop()}`;
      graph.append(h("p", {}, h("a", { href: `#/playground?${new URLSearchParams({ model: `${model}@${version.digest}` })}` }, `Try ${model} in the playground`)));
    } catch (error) {
      graph.append(h("p", { class: "error", role: "alert" }, error.message));
    }
  }
  container.append(
    h("section", { "aria-labelledby": "spec-title" }, h("h2", { id: "spec-title" }, "Spec"),
      h("pre", { id: "spec", tabindex: "0" }, JSON.stringify(version.spec, null, 2))),
    h("section", { "aria-labelledby": "files-title" }, h("h2", { id: "files-title" }, "Files"),
      version.files.length
        ? h("div", { class: "scroll" }, table("Files", ["Path", "Size", "Digest", "Media type"],
          version.files.map((f) => [f.path, bytes(f.size), h("code", { title: f.digest }, shortDigest(f.digest)), f.media_type]), { id: "files" }))
        : h("p", {}, "No files: everything is in the spec.")),
    h("section", { "aria-labelledby": "ref-title" }, h("h2", { id: "ref-title" }, "Eval reports"), referrersTable(version)),
  );
  const form = diffForm(detail);
  if (form) container.append(h("section", { "aria-labelledby": "diff-title" }, h("h2", { id: "diff-title" }, "Diff two versions"), form));
}

export async function diffPage(container, params, current) {
  const diff = await getJSON("/ui/api/diff", { a: params.a, b: params.b });
  if (!current()) return;
  const name = diff.a.ref.split("@")[0];
  container.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/hub" }, "Hub"), " / ", h("a", { href: link(name) }, name)),
    h("h1", {}, "Spec diff"),
    h("p", {}, h("code", {}, diff.a.ref), " → ", h("code", {}, diff.b.ref)),
    h("p", { role: "status" }, diff.changed ? "The specs differ." : "The specs are the same."),
    h("pre", { class: "diff", id: "diff", tabindex: "0" }, diff.lines.map((line) =>
      h(line.op === "+" ? "ins" : line.op === "-" ? "del" : "span", {}, `${line.op === "=" ? " " : line.op} ${line.text}\n`))),
  );
}
