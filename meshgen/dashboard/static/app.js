// meshgen dashboard: polls the JSON API of `meshgen dashboard` and draws what it answers.
// Plain browser JavaScript, no build step; Cytoscape.js and its dagre layout are vendored.
"use strict";

// How each kind of node looks. A kind not listed here gets the plain default style, so a new
// kind from the server shows up before anyone styles it.
const NODE_STYLES = {
  service: {
    shape: "round-rectangle", "background-color": "#f4f7fc", "border-color": "#9aa7bd", "border-width": 1,
    "text-valign": "top", "text-halign": "center", "font-weight": "bold", "font-size": 14, padding: 10,
  },
  version: {
    shape: "round-rectangle", height: 30, "background-color": "#ffffff", "border-color": "#4a6fa5",
    width: (node) => Math.max(56, 7.5 * node.data("label").length + 16),
  },
  external: { shape: "cut-rectangle", width: 90, height: 34, "background-color": "#fff6e8", "border-color": "#c98a2b" },
  outside: {
    shape: "ellipse", width: 96, height: 46, "background-color": "#eceff4", "border-style": "dashed",
    "text-wrap": "wrap", "text-max-width": 70,
  },
  gateway: { shape: "diamond", width: 70, height: 50, "background-color": "#eef7ef", "border-color": "#4a8f5a" },
};
const HEALTH_COLORS = { ok: "#2e9e5b", degraded: "#d99a00", failing: "#d33b3b", idle: "#aab2bf", unknown: "#aab2bf" };

let cy = null;
let graphKey = "";
let nodeTitles = {};
let openPanel = null; // the API path of the panel shown in the side bar
let openTrace = null;

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok && response.status !== 404) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// -- numbers ------------------------------------------------------------------------------

function fmtRate(edge) {
  if (edge.rate === null) return "–";
  const digits = edge.rate >= 10 ? 0 : 1;
  return `${edge.rate.toFixed(digits)} ${edge.unit}`;
}
function fmtErrors(edge) {
  return edge.errors === null ? "–" : `${(100 * edge.errors).toFixed(edge.errors > 0 && edge.errors < 0.1 ? 1 : 0)}%`;
}
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}
function edgeLabel(edge) {
  if (!edge.measured) return "not measured";
  if (edge.health === "unknown") return "…";
  if (edge.health === "idle") return "idle";
  return `${fmtRate(edge)} · ${fmtErrors(edge)}\np99 ${fmtMs(edge.p99)}`;
}

// -- the graph ----------------------------------------------------------------------------

function graphStyle() {
  const style = [
    {
      selector: "node",
      style: {
        label: "data(label)", "text-valign": "center", "text-halign": "center", "font-size": 13, color: "#1f2733",
        shape: "round-rectangle", width: 80, height: 34, "background-color": "#ffffff", "border-width": 2,
        "border-color": "#8a94a6",
      },
    },
  ];
  for (const [kind, look] of Object.entries(NODE_STYLES)) style.push({ selector: `node[kind = "${kind}"]`, style: look });
  style.push(
    { selector: "node[downCount > 0]", style: { "border-color": HEALTH_COLORS.failing, "border-width": 3 } },
    { selector: "node:selected", style: { "overlay-color": "#4a7bd0", "overlay-opacity": 0.12 } },
    {
      selector: "edge",
      style: {
        width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.9,
        "line-color": "data(color)", "target-arrow-color": "data(color)", label: "data(label)", "font-size": 12,
        "text-wrap": "wrap", color: "#1f2733", "text-background-color": "#ffffff", "text-background-opacity": 0.9,
        "text-background-padding": 2,
      },
    },
    { selector: 'edge[health = "failing"]', style: { width: 3.5 } },
    { selector: 'edge[health = "unknown"]', style: { "line-style": "dashed" } },
  );
  return style;
}

function elementsOf(graph) {
  const nodes = graph.nodes.map((node) => ({
    group: "nodes",
    data: {
      ...node,
      parent: node.parent || undefined,
      downCount: (node.down || []).length,
      label: (node.down || []).length ? `${node.label} (${node.down.length} down)` : node.label,
    },
  }));
  const edges = graph.edges.map((edge) => ({
    group: "edges",
    data: { ...edge, label: edgeLabel(edge), color: HEALTH_COLORS[edge.health] || HEALTH_COLORS.unknown },
  }));
  return nodes.concat(edges);
}

function drawGraph(graph) {
  const elements = elementsOf(graph);
  const key = elements.map((e) => e.data.id).sort().join("|");
  if (!cy) {
    cy = cytoscape({ container: $("#graph"), style: graphStyle(), maxZoom: 2.5 });
    cy.on("tap", "node", (event) => {
      const path = event.target.data("details");
      if (path) showPanel(path);
    });
    window.meshDashboard = { cy };
  }
  if (key !== graphKey) {
    graphKey = key;
    cy.elements().remove();
    cy.add(elements);
    cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 24, rankSep: 100, edgeSep: 12, padding: 24 }).run();
  } else {
    for (const element of elements) cy.getElementById(element.data.id).data(element.data);
  }
}

function drawEdgeTable(graph) {
  const rows = graph.edges.map((edge) =>
    el(
      "tr",
      { "data-edge": edge.id, "data-health": edge.health },
      el("td", {}, nodeTitles[edge.source] || edge.source),
      el("td", {}, nodeTitles[edge.target] || edge.target),
      el("td", { class: "num rate" }, edge.measured ? fmtRate(edge) : "not measured"),
      el("td", { class: "num errors" }, fmtErrors(edge)),
      el("td", { class: "num p99" }, fmtMs(edge.p99)),
    ),
  );
  $("#edges tbody").replaceChildren(...rows);
}

async function refreshGraph() {
  const graph = await getJSON("/api/graph");
  if (!graph.mesh) {
    $("#status").textContent = graph.problem;
    return;
  }
  nodeTitles = Object.fromEntries(graph.nodes.map((n) => [n.id, n.title]));
  $("#mesh-name").textContent = graph.mesh;
  const when = graph.sampled_at ? new Date(graph.sampled_at * 1000).toLocaleTimeString() : "not yet";
  const problem = graph.problem ? ` · ${graph.problem}` : "";
  $("#status").textContent =
    `${graph.catalog.split("/").pop()} · ${graph.processes.running}/${graph.processes.total} processes running · ` +
    `numbers from ${graph.source}, sampled ${when}${problem}`;
  $("#status").title = graph.catalog;
  drawGraph(graph);
  drawEdgeTable(graph);
}

// -- the side panel: any JSON of the shape {title, subtitle, sections: [{title, columns, rows}]} --

function cell(value) {
  if (value !== null && typeof value === "object") return el("td", { class: `state-${value.state}` }, value.text);
  return el("td", {}, value);
}

async function showPanel(path) {
  openPanel = path;
  const panel = await getJSON(path);
  if (path !== openPanel) return;
  $("#details-title").textContent = panel.title || panel.problem || "";
  $("#details-subtitle").textContent = panel.subtitle || "";
  const sections = (panel.sections || []).map((section) => {
    const table = el("table", { "data-section": section.title });
    table.append(el("thead", {}, el("tr", {}, ...section.columns.map((c) => el("th", {}, c)))));
    const rows = section.rows.length
      ? section.rows.map((row) => el("tr", {}, ...row.map(cell)))
      : [el("tr", {}, el("td", { colspan: section.columns.length, class: "muted" }, section.empty))];
    table.append(el("tbody", {}, ...rows));
    return el("section", {}, el("h3", {}, section.title), table);
  });
  $("#details-body").replaceChildren(...sections);
}

// -- traces ------------------------------------------------------------------------------

async function refreshTraces() {
  const answer = await getJSON("/api/traces?limit=15");
  const items = answer.traces.map((trace) =>
    el(
      "li",
      {
        "data-trace": trace.id,
        class: [trace.failed ? "error" : "", trace.id === openTrace ? "selected" : ""].join(" ").trim(),
        onclick: () => showTrace(trace.id),
      },
      el("div", { class: "root" }, `${trace.root}`),
      el(
        "div",
        { class: "meta" },
        `${new Date(trace.start).toLocaleTimeString()} · ${fmtMs(trace.duration_ms)} · ${trace.spans} spans · ` +
          trace.services.join(" → ") +
          (trace.partial ? " · first hop's spans still arriving" : ""),
      ),
    ),
  );
  if (!items.length) items.push(el("li", { class: "muted" }, answer.problem || "no traces yet: send a request"));
  $("#traces").replaceChildren(...items);
}

async function showTrace(id) {
  openTrace = id;
  for (const item of document.querySelectorAll("#traces li")) item.classList.toggle("selected", item.dataset.trace === id);
  const trace = await getJSON(`/api/trace/${encodeURIComponent(id)}`);
  if (!trace.rows) {
    $("#waterfall").replaceChildren(el("p", { class: "muted" }, trace.problem));
    return;
  }
  const rows = trace.rows.map((span) =>
    el(
      "div",
      { class: `span ${span.kind}${span.failed ? " error" : ""}`, "data-service": span.service, "data-kind": span.kind },
      el(
        "div",
        { class: "label", style: `padding-left: ${span.depth}em`, title: `${span.instance} ${span.cluster}` },
        `${span.service} ${span.kind} ${span.status ? `(${span.status})` : ""}`,
      ),
      el("div", { class: "track" }, el("div", { class: "bar", style: `left: ${span.offset}%; width: ${span.width}%` })),
      el("div", { class: "duration" }, fmtMs(span.duration_ms)),
    ),
  );
  const head = el("p", { class: "waterfall-head" }, `trace ${trace.id} · ${fmtMs(trace.duration_ms)} · ${trace.root}`);
  $("#waterfall").replaceChildren(head, ...rows);
}

// -- the last verify ---------------------------------------------------------------------------

async function refreshVerify() {
  const { result } = await getJSON("/api/verify");
  if (!result) {
    $("#verify").replaceChildren(el("p", { class: "muted" }, "no result yet: run meshgen verify CATALOG"));
    return;
  }
  const failed = result.checks.filter((c) => !c.passed).length;
  const summary = el(
    "p",
    { id: "verify-summary", class: failed ? "state-bad" : "state-ok" },
    `${result.checks.length - failed} passed, ${failed} failed, ${result.skipped.length} skipped`,
    el("span", { class: "muted" }, ` · ${result.kinds.join(", ")} · ${result.catalog} · ${result.finished}`),
  );
  const rows = result.checks.map((check) =>
    el(
      "tr",
      { "data-passed": String(check.passed) },
      el("td", {}, check.kind),
      el("td", {}, check.name),
      el("td", { class: check.passed ? "state-ok" : "state-bad" }, check.passed ? "pass" : "FAIL"),
      el("td", {}, check.detail),
    ),
  );
  const head = el("thead", {}, el("tr", {}, ...["kind", "check", "result", "detail"].map((c) => el("th", {}, c))));
  $("#verify").replaceChildren(summary, el("table", {}, head, el("tbody", {}, ...rows)));
}

// -- polling ---------------------------------------------------------------------------------

function every(seconds, task) {
  const run = () =>
    task()
      .catch((error) => ($("#status").textContent = `dashboard server unreachable: ${error.message}`))
      .finally(() => setTimeout(run, seconds * 1000));
  run();
}

every(2, refreshGraph);
every(5, refreshTraces);
every(5, refreshVerify);
every(5, () => (openPanel ? showPanel(openPanel) : Promise.resolve()));
