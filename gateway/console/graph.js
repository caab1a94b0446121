// A composition lock drawn as a graph: the root on the left, what it references to its right.

import { h, s, shortDigest } from "./dom.js";

const W = 230, H = 46, GAP_X = 70, GAP_Y = 18;

export function lockGraph(lock) {
  const depth = new Map([[lock.root, 0]]);
  const queue = [lock.root];
  while (queue.length) {
    const node = queue.shift();
    for (const edge of lock.edges) {
      if (edge.source === node && !depth.has(edge.target)) {
        depth.set(edge.target, depth.get(node) + 1);
        queue.push(edge.target);
      }
    }
  }
  const columns = [];
  for (const node of lock.nodes) {
    const d = depth.get(node.digest) ?? 0;
    (columns[d] ||= []).push(node);
  }
  const at = new Map();
  columns.forEach((nodes, col) => nodes.forEach((node, row) => at.set(node.digest, { x: 10 + col * (W + GAP_X), y: 10 + row * (H + GAP_Y) })));
  const width = 20 + columns.length * (W + GAP_X) - GAP_X;
  const height = 20 + Math.max(...columns.map((c) => c.length)) * (H + GAP_Y) - GAP_Y;
  const edges = lock.edges.map((edge) => {
    const a = at.get(edge.source), b = at.get(edge.target);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    return s("g", { class: "edge" },
      s("path", { d: `M${x1},${y1} C${x1 + GAP_X / 2},${y1} ${x2 - GAP_X / 2},${y2} ${x2},${y2}` }),
      s("text", { x: x2 - 4, y: y2 - 4, "text-anchor": "end" }, edge.field));
  });
  const nodes = lock.nodes.map((node) => {
    const { x, y } = at.get(node.digest);
    const href = `#/artifact?${new URLSearchParams({ name: node.name, digest: node.digest })}`;
    return s("a", { href, class: `node kind-${node.kind}`, "aria-label": `${node.kind} ${node.name} ${shortDigest(node.digest)}` },
      s("rect", { x, y, width: W, height: H, rx: 6 }),
      s("text", { x: x + 8, y: y + 18 }, `${node.kind} · ${node.name}`),
      s("text", { x: x + 8, y: y + 36, class: "digest" }, shortDigest(node.digest)));
  });
  const list = h("ul", { class: "lock-list" }, lock.nodes.map((node) => h("li", {},
    `${node.kind} `, h("a", { href: `#/artifact?${new URLSearchParams({ name: node.name, digest: node.digest })}` }, node.name),
    ` @${shortDigest(node.digest)}`)));
  return h("div", { class: "graph" },
    h("div", { class: "scroll" }, s("svg", { id: "lock-graph", role: "group", "aria-label": "composition lock graph", viewBox: `0 0 ${width} ${height}`, width, height }, edges, nodes)),
    h("details", {}, h("summary", {}, "As a list"), list));
}
