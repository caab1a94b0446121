// The console's shell: hash routes (#/hub, #/artifact?name=…, #/playground, …), login and errors.

import { apiKey, getJSON, setApiKey } from "./api.js";
import { h } from "./dom.js";
import { artifactPage, diffPage, hubPage } from "./hub.js";
import { playgroundPage } from "./playground.js";
import { comparePage, reportPage } from "./evals.js";
import { usagePage } from "./usage.js";

const routes = {
  hub: hubPage,
  artifact: artifactPage,
  diff: diffPage,
  playground: playgroundPage,
  report: reportPage,
  compare: comparePage,
  usage: usagePage,
};

const main = document.getElementById("main");
const login = document.getElementById("login");
const logout = document.getElementById("logout");

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  return { page: path || "hub", params: Object.fromEntries(new URLSearchParams(query)) };
}

let generation = 0;

async function render() {
  const { page, params } = parseHash();
  const mine = ++generation;
  for (const link of document.querySelectorAll("nav a")) {
    const current = link.getAttribute("href") === `#/${page}`;
    current ? link.setAttribute("aria-current", "page") : link.removeAttribute("aria-current");
  }
  logout.hidden = !apiKey();
  const view = routes[page];
  const container = h("div", { class: "page" });
  main.replaceChildren(container);
  if (!view) {
    container.append(h("p", { role: "alert" }, `No page ${page}.`));
    return;
  }
  try {
    await view(container, params, () => mine === generation);
  } catch (error) {
    if (mine !== generation) return;
    container.append(h("p", { class: "error", role: "alert" }, error.message));
    if (error.status === 401) showLogin("This key was refused.");
  }
  window.aihubReadyMs = performance.now();  // since navigation start: what bench/console_bench.py reports
  document.body.dataset.ready = page;  // tests and benchmarks wait for this
}

function showLogin(message = "") {
  login.hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("login-key").focus();
}

login.addEventListener("submit", async (event) => {
  event.preventDefault();
  setApiKey(document.getElementById("login-key").value.trim());
  try {
    await getJSON("/v1/models");
    login.hidden = true;
    login.reset();
    render();
  } catch (error) {
    setApiKey("");
    showLogin(error.status === 401 ? "This key was refused." : error.message);
  }
});

logout.addEventListener("click", () => { setApiKey(""); showLogin(); render(); });
window.addEventListener("aihub:unauthorized", () => showLogin(apiKey() ? "This key was refused." : ""));
window.addEventListener("hashchange", () => { render(); main.focus({ preventScroll: true }); });
render();
