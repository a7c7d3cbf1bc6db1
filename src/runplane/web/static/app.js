// runplane dashboard: hash routing, login with an API key, live refresh by polling.
import { api, auth, ApiError } from "./api.js";
import { h, fill, text } from "./dom.js";
import { endpointsView } from "./views/endpoints.js";
import { endpointView } from "./views/endpoint.js";
import { jobView } from "./views/job.js";
import { machinesView } from "./views/machines.js";

const REFRESH_MS = Number(localStorage.getItem("runplane.refreshMs")) || 2000;

const ROUTES = [
  [/^#\/endpoints\/?$/, "endpoints", () => endpointsView()],
  [/^#\/endpoints\/([^/?]+)$/, "endpoints", (id) => endpointView(decodeURIComponent(id))],
  [/^#\/jobs\/([^/?]+)$/, "endpoints", (id) => jobView(decodeURIComponent(id))],
  [/^#\/machines\/?$/, "machines", () => machinesView()],
];

const app = document.getElementById("app");
const live = document.getElementById("live");
const state = { view: null, generation: 0, timer: null, refreshes: 0 };
// Why the page could not be refreshed (a 404 for the page's resource, the server down...).
const problem = h("div.banner.bad#refresh-error", { hidden: true, role: "alert" });
// Tests read these to tell a live update from a page reload.
window.runplane = { bootId: Math.random().toString(36).slice(2), refreshes: 0 };

function route() {
  state.view?.destroy?.();
  state.view = null;
  state.generation += 1;
  clearTimeout(state.timer);
  document.body.classList.toggle("logged-out", !auth.key);
  if (!auth.key) {
    mountLogin();
    return;
  }
  const hash = location.hash || "#/endpoints";
  for (const [re, nav, make] of ROUTES) {
    const m = hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === nav);
    }
    state.view = make(...m.slice(1));
    fill(app, problem, state.view.el);
    tick(state.generation);
    return;
  }
  location.replace("#/endpoints");
}

async function tick(generation) {
  if (generation !== state.generation || !state.view) return;
  if (document.hidden) {
    live.dataset.state = "paused";
    return; // resumed by visibilitychange
  }
  live.dataset.state = "busy";
  try {
    await state.view.refresh();
    if (generation !== state.generation) return;
    state.refreshes += 1;
    window.runplane.refreshes = state.refreshes;
    document.body.dataset.refreshes = String(state.refreshes);
    live.dataset.state = "ok";
    problem.hidden = true;
    text(live.querySelector(".live-text"), `live · ${new Date().toLocaleTimeString(undefined, { hour12: false })}`);
    live.title = "refreshed automatically every " + REFRESH_MS / 1000 + " s";
  } catch (e) {
    if (generation !== state.generation) return;
    live.dataset.state = "error";
    text(live.querySelector(".live-text"), "offline");
    live.title = e instanceof ApiError ? e.message : `server unreachable: ${e.message}`;
    problem.hidden = false;
    text(problem, e instanceof ApiError ? e.message : `Cannot reach the server (${e.message}); retrying.`);
  }
  if (generation === state.generation) {
    state.timer = setTimeout(() => tick(generation), REFRESH_MS);
  }
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.view) {
    clearTimeout(state.timer);
    tick(state.generation);
  }
});

function mountLogin() {
  const input = h("input#login-key", {
    type: "password", name: "apiKey", autocomplete: "current-password", spellcheck: "false",
    placeholder: "your runplane API key", required: true,
  });
  const err = h("div.field-error#login-error", { role: "alert" });
  const button = h("button.primary", { type: "submit" }, "Log in");
  const form = h("form.login-card", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const key = input.value.trim();
      text(err, "");
      input.classList.remove("invalid");
      if (!key) {
        text(err, "Paste an API key.");
        input.classList.add("invalid");
        return;
      }
      button.disabled = true;
      try {
        await api("/v1/endpoints", { key });
        auth.set(key);
        route();
      } catch (e) {
        text(err, e instanceof ApiError ? e.message : `Cannot reach the server: ${e.message}`);
        input.classList.add("invalid");
      } finally {
        button.disabled = false;
      }
    },
  },
    h("div.login-logo", h("span.logo"), "runplane"),
    h("p.muted", "Serverless GPU endpoints on your own machines. Log in with an API key " +
      "(the admin key printed when the server first started, or runplane keys create)."),
    h("label", { for: "login-key" }, "API key"),
    input, err, button,
    h("p.small.muted", "The key stays in this browser (localStorage) and is sent as a Bearer token."));
  fill(app, h("section.login", form));
  input.focus();
}

window.addEventListener("runplane:unauthorized", () => {
  // A key that was revoked while logged in: back to the login form.
  if (auth.key) {
    auth.clear();
    route();
  }
});

document.getElementById("logout").addEventListener("click", () => {
  auth.clear();
  route();
});

window.addEventListener("hashchange", route);
route();
