// The status page: every provider's health, recent errors and request rates, from
// /v1/status (behind the API key, asked for as the chat page does).
import { ApiError, getStatus, setApiKey } from "./api.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 10000;

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  if (className) td.className = className;
  return td;
}

function ago(unixSeconds) {
  if (unixSeconds == null) return "never";
  const s = Math.max(0, Math.round(Date.now() / 1000 - unixSeconds));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return new Date(unixSeconds * 1000).toLocaleString();
}

function askKey(reason) {
  $("key-reason").textContent = reason;
  $("key-dialog").showModal();
  return new Promise((resolve) => {
    $("key-form").onsubmit = (event) => {
      event.preventDefault();
      setApiKey($("key-input").value.trim(), $("key-remember").checked);
      $("key-dialog").close();
      resolve();
    };
  });
}

function render(data) {
  const rows = data.providers.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.provider = p.provider;
    tr.dataset.status = p.status;
    const rate = p.success_rate == null ? null : `${Math.round(p.success_rate * 100)} %`;
    const latency = p.latency_p50_ms == null ? null : `${Math.round(p.latency_p50_ms)} ms`;
    tr.append(
      cell(p.provider),
      cell(p.status.replace("_", " "), `badge ${p.status}`),
      cell(rate),
      cell(latency),
      cell(String(p.requests_per_minute ?? 0)),
      cell(ago(p.last_success_at)),
      cell(p.last_error ?? p.error ?? null),
    );
    return tr;
  });
  $("providers").tBodies[0].replaceChildren(...rows);
  const errors = data.recent_errors.map((e) => {
    const tr = document.createElement("tr");
    tr.append(cell(ago(e.at)), cell(e.provider), cell(e.code), cell(String(e.status)), cell(e.probe ? "probe" : "request"));
    return tr;
  });
  if (!errors.length) {
    const tr = document.createElement("tr");
    const td = cell("No errors lately.", "muted");
    td.colSpan = 5;
    tr.append(td);
    errors.push(tr);
  }
  $("errors").tBodies[0].replaceChildren(...errors);
  const working = data.providers.filter((p) => p.status === "working").length;
  const probes = data.probe_interval ? `probed every ${data.probe_interval} s` : "probes off";
  $("summary").textContent = `${data.ready ? "Ready" : "Not ready"}: ${working} of ${data.providers.length} providers working, ${data.requests_per_minute} requests/min, ${probes} (g4f-server ${data.version}).`;
}

async function refresh() {
  for (;;) {
    try {
      render(await getStatus());
      $("status-error").hidden = true;
      document.documentElement.dataset.ready = "1"; // for tests and scripts driving the page
      return;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        await askKey(err.message);
        continue;
      }
      $("status-error").textContent = `Cannot load the status: ${err.message}`;
      $("status-error").hidden = false;
      return;
    }
  }
}

await refresh();
setInterval(refresh, REFRESH_MS);
