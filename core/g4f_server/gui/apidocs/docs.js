// The API reference: loads /openapi.json into RapiDoc, asking for the server's API key
// first when it wants one (the key then also goes with every "Try"), and follows the
// system's light or dark mode. Calls go to the server that sent the page.
const doc = document.getElementById("reference");
const form = document.getElementById("key-form");
const dark = window.matchMedia("(prefers-color-scheme: dark)");
const theme = () => doc.setAttribute("theme", dark.matches ? "dark" : "light");
theme();
dark.addEventListener("change", theme);
doc.setAttribute("server-url", window.location.origin);
doc.setAttribute("default-api-server", window.location.origin);

async function load(key) {
  const response = await fetch("/openapi.json", key ? { headers: { Authorization: `Bearer ${key}` } } : {});
  if (response.status === 401) {
    form.hidden = false;
    document.getElementById("key-reason").textContent = key
      ? "That key was refused. API key:"
      : "This server needs an API key to show its reference. API key:";
    document.getElementById("key-input").focus();
    return;
  }
  form.hidden = true;
  const spec = await response.json();
  if (key) doc.addEventListener("spec-loaded", () => doc.setApiKey("bearer", key), { once: true });
  await doc.loadSpec(spec);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load(document.getElementById("key-input").value.trim());
});
customElements.whenDefined("rapi-doc").then(() => load(null));
