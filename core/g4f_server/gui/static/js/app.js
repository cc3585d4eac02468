// The chat page: conversations, the model picker, streaming answers, images and speech.
import { ApiError, apiKey, generateImage, listModels, listProviders, setApiKey, speak, streamChat } from "./api.js";
import { copyText, renderMarkdown, webUrl } from "./markdown.js";
import * as store from "./store.js";

const $ = (id) => document.getElementById(id);
const ui = {
  messages: $("messages"), prompt: $("prompt"), composer: $("composer"), send: $("send"),
  stop: $("stop"), model: $("model"), capabilities: $("capabilities"), status: $("status"),
  list: $("conversations"), attachments: $("attachments"), file: $("file"), main: $("main"),
  sidebar: $("sidebar"), toggle: $("toggle-sidebar"), keyDialog: $("key-dialog"),
  settings: $("settings"), settingsToggle: $("toggle-settings"), system: $("system-prompt"),
  temperature: $("temperature"), temperatureValue: $("temperature-value"),
};
const MODEL_STORAGE = "g4f.model";
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const TITLE_CHARS = 80; // a conversation's title: the first line of its first message, up to this
const EXAMPLES = [
  "Explain the difference between a list and a tuple in Python",
  "Write a haiku about the first snow of winter",
  "Give me three ideas for a weekend trip without a car",
];

const state = {
  // {provider, model, capabilities, routes}: every chat model of every provider, then
  // the public names of the routing table (provider null: the server routes them)
  choices: [],
  imageModel: null,
  speechModel: null,
  conversation: null,
  controller: null, // the AbortController of the running request
  attachments: [], // data: URLs of images to send with the next message
  audio: null,
};

// --- small helpers -----------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "on") for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function button(label, onClick, extra = {}) {
  return el("button", { type: "button", textContent: label, on: { click: onClick }, ...extra });
}

function showStatus(message) {
  ui.status.textContent = message ?? "";
  ui.status.hidden = !message;
}

function nearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

// --- API key -------------------------------------------------------------------------

function askKey(reason) {
  $("key-reason").textContent = reason;
  $("key-input").value = "";
  ui.keyDialog.showModal();
  return new Promise((resolve) => {
    $("key-form").onsubmit = (event) => {
      event.preventDefault();
      setApiKey($("key-input").value.trim(), $("key-remember").checked);
      ui.keyDialog.close();
      resolve();
    };
  });
}

// Runs ``action``; when the server answers 401 it asks for the key and tries again.
async function withKey(action) {
  for (;;) {
    try {
      return await action();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      await askKey(err.message);
    }
  }
}

// --- models --------------------------------------------------------------------------

async function loadModels() {
  const models = await withKey(listModels);
  // Each provider's live status (working, degraded, down, needs_auth) next to its models;
  // the page still works when the list cannot be read.
  const statuses = new Map();
  try {
    for (const p of await withKey(listProviders)) statuses.set(p.provider, p.status);
  } catch {
    // no statuses: the models are listed without them
  }
  state.statuses = statuses;
  state.choices = [];
  const routed = []; // the public names: once, in their own group
  for (const m of models) {
    if (m.provider) continue; // the provider entries of /v1/models
    const caps = m.capabilities ?? [];
    if (m.public) {
      if ((m.kinds ?? []).includes("chat")) {
        const routes = (m.routes ?? []).filter((r) => r.kind === "chat");
        routed.push({ provider: null, model: m.id, capabilities: caps, routes });
      }
      continue;
    }
    for (const provider of m.providers ?? []) {
      if (caps.includes("chat")) state.choices.push({ provider, model: m.id, capabilities: caps, free: m.free });
      if (caps.includes("image") && !caps.includes("chat")) state.imageModel ??= m.id;
      if (caps.includes("speech") && !caps.includes("chat")) state.speechModel ??= m.id;
    }
  }
  state.choices.push(...routed);
  const groups = new Map();
  state.choices.forEach((choice, index) => {
    const key = choice.provider ?? "Routed by the server";
    if (!groups.has(key)) {
      const status = choice.provider ? statuses.get(choice.provider) : undefined;
      const label = status ? `${key} (${status.replace("_", " ")})` : key;
      groups.set(
        key,
        el("optgroup", { label, "data-provider": choice.provider ?? "", "data-status": status ?? "" }),
      );
    }
    groups.get(key).append(el("option", { value: String(index), textContent: optionLabel(choice), title: routeText(choice) }));
  });
  ui.model.replaceChildren(...groups.values());
  if (!state.choices.length) ui.model.append(el("option", { value: "", textContent: "No chat model available" }));
  const saved = localStorage.getItem(MODEL_STORAGE);
  const found = state.choices.findIndex((c) => choiceKey(c) === saved);
  if (found >= 0) ui.model.value = String(found);
  showCapabilities();
}

function choiceKey(choice) {
  return `${choice.provider ?? "*"}/${choice.model}`;
}

// "llama-3 (tools, vision, free)"; a public name: "gpt-4o → Pollinations, Groq, Copilot".
function optionLabel(choice) {
  if (!choice.provider) {
    const providers = [...new Set(choice.routes.map((r) => r.provider))];
    return `${choice.model} → ${providers.join(", ")}`;
  }
  const extras = choice.capabilities.filter((c) => c !== "chat");
  if (choice.free) extras.push("free");
  return extras.length ? `${choice.model} (${extras.join(", ")})` : choice.model;
}

// What a public name routes to, in the order the server tries: "Pollinations: openai, then Groq: llama".
function routeText(choice) {
  if (choice.provider) return `${choice.provider}: ${choice.model}`;
  return "Routed by the server to " + choice.routes.map((r) => `${r.provider}: ${r.model}`).join(", then ");
}

function currentChoice() {
  return state.choices[Number(ui.model.value)] ?? null;
}

function showCapabilities() {
  const choice = currentChoice();
  if (!choice) ui.capabilities.textContent = "";
  else if (choice.provider) ui.capabilities.textContent = choice.capabilities.join(" · ");
  else ui.capabilities.textContent = `${routeText(choice)} · ${choice.capabilities.join(" · ")}`;
  const status = choice?.provider ? state.statuses?.get(choice.provider) : undefined;
  const badge = $("provider-status");
  badge.textContent = status ? `${choice.provider}: ${status.replace("_", " ")}` : "";
  badge.className = status ? `badge ${status}` : "";
  badge.dataset.status = status ?? "";
}

// --- conversations -------------------------------------------------------------------

async function refreshList() {
  const all = await store.listConversations();
  ui.list.replaceChildren(...all.map(listItem));
}

function listItem(conversation) {
  const current = conversation.id === state.conversation?.id;
  // The whole title, wrapped; the actions show on hover or focus (always on touch screens).
  const title = button(conversation.title, () => openConversation(conversation), { className: "title", title: conversation.title });
  const item = el("li", { "aria-current": String(current) }, title);
  const rename = () => {
    const input = el("input", { value: conversation.title, "aria-label": "Conversation title" });
    let finished = false;
    const done = async (save) => {
      if (finished) return;
      finished = true;
      if (save && input.value.trim()) {
        conversation.title = input.value.trim();
        await store.saveConversation(conversation);
        if (conversation.id === state.conversation?.id) state.conversation.title = conversation.title;
      }
      await refreshList();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") done(true);
      if (e.key === "Escape") done(false);
    });
    input.addEventListener("blur", () => done(true));
    title.replaceWith(input);
    input.focus();
  };
  item.append(el("span", { className: "item-actions" },
    // Small signs, not words: they float over the title's end, not its middle.
    button("✎", rename, { className: "small", title: "Rename", "aria-label": `Rename ${conversation.title}` }),
    button("✕", async () => {
      await store.deleteConversation(conversation.id);
      if (conversation.id === state.conversation?.id) await startConversation(store.newConversation());
      await refreshList();
    }, { className: "small", title: "Delete", "aria-label": `Delete ${conversation.title}` }),
  ));
  return item;
}

// Synchronous up to the first await: a message sent right after the click goes to the
// conversation just opened.
async function openConversation(conversation) {
  ui.sidebar.classList.remove("open");
  ui.toggle.setAttribute("aria-expanded", "false");
  await startConversation(conversation ?? store.newConversation());
}

async function startConversation(conversation) {
  stopRequest();
  state.conversation = conversation;
  for (const m of conversation.messages) {
    if (m.pending) Object.assign(m, { pending: false, stopped: true }); // the page closed mid-answer
  }
  store.setLastConversation(conversation.id);
  showSettings();
  if (conversation.messages.length) ui.messages.replaceChildren(...conversation.messages.map(messageView));
  else showEmpty();
  ui.messages.scrollTop = ui.messages.scrollHeight;
  showStatus(null);
  await refreshList();
  ui.prompt.focus();
}

async function persist(c = state.conversation) {
  if (!c.messages.length) return;
  if (c.title === "New chat") {
    const first = c.messages.find((m) => m.role === "user");
    if (first) c.title = titleOf(first.content) || "Images";
  }
  try {
    await store.saveConversation(c);
  } catch (err) {
    showStatus(`This conversation could not be saved in the browser: ${err.message}`);
  }
  await refreshList();
}

// The first line of the first message; a long one is cut at a word, with an ellipsis.
function titleOf(text) {
  const line = text.trim().split("\n")[0].trim();
  if (line.length <= TITLE_CHARS) return line;
  const cut = line.slice(0, TITLE_CHARS);
  const space = cut.lastIndexOf(" ");
  return `${(space > TITLE_CHARS / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

// --- empty state and settings -------------------------------------------------------

function showEmpty() {
  const examples = [...EXAMPLES];
  if (state.imageModel) examples.push("/image a lighthouse at dusk, watercolour");
  ui.messages.replaceChildren(el("div", { className: "empty" },
    el("h2", { textContent: "What can I help with?" }),
    el("p", { className: "muted", textContent: "Type a message below: Enter sends, Shift+Enter starts a new line, /image <prompt> draws a picture. The model picker above chooses who answers. Or start with one of these:" }),
    el("div", { className: "examples" }, ...examples.map((text) => button(text, () => {
      ui.prompt.value = text;
      submit();
    }, { className: "example" }))),
  ));
}

function settingsOf(conversation = state.conversation) {
  conversation.settings ??= { system: "", temperature: null };
  return conversation.settings;
}

// The panel shows the open conversation's settings.
function showSettings() {
  const settings = settingsOf();
  ui.system.value = settings.system;
  ui.temperature.value = String(settings.temperature ?? 1);
  ui.temperatureValue.textContent = settings.temperature === null ? "default" : settings.temperature.toFixed(1);
}

function saveSettings() {
  const c = state.conversation;
  if (c.messages.length) store.saveConversation(c).catch((err) => showStatus(`The settings could not be saved: ${err.message}`));
}

function download(name, type, text) {
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// --- rendering -----------------------------------------------------------------------

function messageView(message) {
  const view = el("article", { className: `msg ${message.role}` });
  view.message = message;
  updateView(view);
  return view;
}

function updateView(view) {
  const m = view.message;
  const parts = [];
  if (m.role === "user") {
    parts.push(el("div", { className: "content", textContent: m.content }));
    if (m.images?.length) {
      parts.push(el("div", { className: "thumbs" }, ...m.images.map((src) => el("img", { src, alt: "attached image" }))));
    }
  } else {
    if (m.reasoning) {
      parts.push(el("details", { className: "reasoning" }, el("summary", { textContent: "Reasoning" }), m.reasoning));
    }
    const content = el("div", { className: "content" });
    renderMarkdown(content, m.content);
    if (m.pending && !m.content) content.classList.add("typing");
    parts.push(content);
    if (m.citations?.length) {
      parts.push(el("ol", { className: "citations", "aria-label": "Sources" }, ...m.citations.map(citation)));
    }
    if (m.stopped) parts.push(el("p", { className: "stopped", textContent: "Stopped." }));
    if (m.error) parts.push(el("p", { className: "error", role: "alert", textContent: m.error }));
    if (m.provider || m.model) {
      parts.push(el("p", { className: "meta", textContent: [m.provider, m.model].filter(Boolean).join(" · ") }));
    }
  }
  if (!m.pending) parts.push(actions(view));
  view.replaceChildren(...parts);
}

function citation({ url, title }) {
  const href = webUrl(url);
  const link = href ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", textContent: title || href }) : title || url;
  return el("li", {}, link);
}

function actions(view) {
  const m = view.message;
  const messages = state.conversation.messages;
  const row = el("div", { className: "actions" });
  if (m.role === "user") {
    if (m.kind !== "image") row.append(button("Edit", () => editMessage(view), { "aria-label": "Edit and resend" }));
    return row;
  }
  row.append(button("Copy", (e) => copyText(m.content, e.target), { "aria-label": "Copy answer" }));
  if (state.speechModel && m.content && m.kind !== "image") {
    row.append(button("Read aloud", (e) => readAloud(view, e.target)));
  }
  if (m === messages[messages.length - 1]) row.append(button("Regenerate", regenerate));
  return row;
}

const pendingRenders = new Set();
function scheduleRender(view) {
  if (!pendingRenders.size) {
    requestAnimationFrame(() => {
      const follow = nearBottom();
      for (const v of pendingRenders) updateView(v);
      pendingRenders.clear();
      if (follow) ui.messages.scrollTop = ui.messages.scrollHeight;
    });
  }
  pendingRenders.add(view);
}

function append(message) {
  ui.messages.querySelector(".empty")?.remove();
  state.conversation.messages.push(message);
  const view = messageView(message);
  ui.messages.append(view);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  return view;
}

function refreshActions() {
  for (const view of ui.messages.children) if (!view.message.pending) updateView(view);
}

// --- requests ------------------------------------------------------------------------

function setBusy(controller) {
  state.controller = controller;
  ui.send.hidden = Boolean(controller);
  ui.stop.hidden = !controller;
  if (controller) ui.stop.focus();
  else if (document.activeElement === ui.stop || document.activeElement === document.body) ui.prompt.focus();
}

function stopRequest() {
  state.controller?.abort();
}

function apiMessages() {
  const out = [];
  for (const m of state.conversation.messages) {
    if (m.kind === "image" || m.pending || (m.role === "assistant" && !m.content)) continue;
    if (m.role === "user" && m.images?.length) {
      const parts = [{ type: "text", text: m.content }];
      for (const url of m.images) parts.push({ type: "image_url", image_url: { url } });
      out.push({ role: "user", content: parts });
    } else {
      out.push({ role: m.role, content: m.content });
    }
  }
  return out;
}

async function run(view, work) {
  const m = view.message;
  const conversation = state.conversation; // the user may switch away meanwhile
  const controller = new AbortController();
  setBusy(controller);
  persist(conversation); // the question is kept even if the page closes mid-answer
  try {
    await withKey(() => work(controller.signal));
  } catch (err) {
    if (err.name === "AbortError") m.stopped = true;
    else m.error = err instanceof ApiError ? err.message : `Unexpected error: ${err.message}`;
  } finally {
    m.pending = false;
    if (!m.content && !m.error && !m.stopped) m.error = "The provider sent an empty answer.";
    updateView(view);
    refreshActions();
    await persist(conversation);
    setBusy(null); // after saving: a reload from now on finds the whole turn
  }
}

async function answer() {
  const choice = currentChoice();
  const conversation = state.conversation;
  const history = apiMessages();
  const view = append({ role: "assistant", content: "", reasoning: "", citations: [], pending: true });
  const m = view.message;
  if (!choice) {
    m.pending = false;
    m.error = "No chat model is available on this server.";
    updateView(view);
    return;
  }
  await run(view, async (signal) => {
    m.content = m.reasoning = "";
    m.citations = [];
    const settings = settingsOf(conversation);
    const messages = settings.system ? [{ role: "system", content: settings.system }, ...history] : history;
    const request = { model: choice.model, messages };
    if (choice.provider) request.provider = choice.provider; // else the server routes the public name
    if (settings.temperature !== null) request.temperature = settings.temperature;
    for await (const chunk of streamChat(request, signal)) {
      m.provider = chunk.provider ?? m.provider;
      m.model = chunk.model ?? m.model;
      for (const c of chunk.choices ?? []) {
        const delta = c.delta ?? {};
        if (delta.content) m.content += delta.content;
        if (delta.reasoning_content) m.reasoning += delta.reasoning_content;
        for (const a of delta.annotations ?? []) if (a.url_citation) m.citations.push(a.url_citation);
      }
      scheduleRender(view);
    }
  });
}

async function drawImage(prompt) {
  append({ role: "user", kind: "image", content: `/image ${prompt}` });
  const view = append({ role: "assistant", kind: "image", content: "", prompt, pending: true });
  const m = view.message;
  if (!state.imageModel) {
    m.pending = false;
    m.error = "No image model is available on this server.";
    updateView(view);
    return persist();
  }
  await run(view, async () => {
    const result = await generateImage(prompt, state.imageModel);
    const alt = prompt.replace(/[[\]\n]/g, " ");
    m.content = result.data.map((image) => `![${alt}](<${image.url}>)`).join("\n\n");
    m.provider = result.provider;
    m.model = result.model;
  });
}

async function regenerate() {
  const messages = state.conversation.messages;
  const last = messages.pop();
  ui.messages.lastElementChild.remove();
  if (last.kind === "image") {
    messages.pop();
    ui.messages.lastElementChild.remove();
    return drawImage(last.prompt);
  }
  return answer();
}

function editMessage(view) {
  const m = view.message;
  const area = el("textarea", { value: m.content, "aria-label": "Edit message" });
  const resend = async () => {
    const text = area.value.trim();
    if (!text || state.controller) return;
    const messages = state.conversation.messages;
    messages.splice(messages.indexOf(m) + 1);
    while (view.nextElementSibling) view.nextElementSibling.remove();
    m.content = text;
    updateView(view);
    await answer();
  };
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      resend();
    }
    if (e.key === "Escape") updateView(view);
  });
  view.replaceChildren(area, el("div", { className: "actions" }, button("Send", resend), button("Cancel", () => updateView(view))));
  area.focus();
}

async function readAloud(view, control) {
  if (state.audio) {
    state.audio.pause();
    state.audio = null;
    control.textContent = "Read aloud";
    return;
  }
  const text = view.querySelector(".content").innerText.slice(0, 4096);
  control.disabled = true;
  try {
    const blob = await withKey(() => speak(text, state.speechModel));
    const audio = new Audio(URL.createObjectURL(blob));
    state.audio = audio;
    control.textContent = "Stop reading";
    audio.addEventListener("ended", () => {
      state.audio = null;
      control.textContent = "Read aloud";
    });
    await audio.play();
  } catch (err) {
    showStatus(err instanceof ApiError ? err.message : `Cannot play the audio: ${err.message}`);
    state.audio = null;
    control.textContent = "Read aloud";
  } finally {
    control.disabled = false;
  }
}

async function submit() {
  const text = ui.prompt.value.trim();
  if (state.controller || (!text && !state.attachments.length)) return;
  ui.prompt.value = "";
  showStatus(null);
  if (text.startsWith("/image ") && text.length > 7) return drawImage(text.slice(7).trim());
  const images = state.attachments.splice(0);
  ui.attachments.replaceChildren();
  append({ role: "user", content: text, images });
  await answer(); // synchronous until the request starts: Send turns into Stop at once
}

// --- image attachments ---------------------------------------------------------------

function attach(files) {
  for (const file of files) {
    if (!file.type.startsWith("image/")) continue;
    if (file.size > MAX_IMAGE_BYTES) {
      showStatus(`${file.name} is larger than 10 MB.`);
      continue;
    }
    const reader = new FileReader();
    reader.onload = () => {
      const url = reader.result;
      state.attachments.push(url);
      const figure = el("figure", {}, el("img", { src: url, alt: `attached ${file.name}` }));
      figure.append(button("×", () => {
        state.attachments.splice(state.attachments.indexOf(url), 1);
        figure.remove();
      }, { "aria-label": `Remove ${file.name}` }));
      ui.attachments.append(figure);
    };
    reader.readAsDataURL(file);
  }
}

// --- wiring --------------------------------------------------------------------------

function wire() {
  ui.composer.addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  ui.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  ui.prompt.addEventListener("paste", (e) => {
    if (e.clipboardData?.files.length) {
      e.preventDefault();
      attach(e.clipboardData.files);
    }
  });
  ui.stop.addEventListener("click", stopRequest);
  ui.model.addEventListener("change", () => {
    const choice = currentChoice();
    if (choice) localStorage.setItem(MODEL_STORAGE, choiceKey(choice));
    showCapabilities();
  });
  $("attach").addEventListener("click", () => ui.file.click());
  ui.file.addEventListener("change", () => {
    attach(ui.file.files);
    ui.file.value = "";
  });
  ui.main.addEventListener("dragover", (e) => {
    e.preventDefault();
    ui.main.classList.add("dragging");
  });
  ui.main.addEventListener("dragleave", () => ui.main.classList.remove("dragging"));
  ui.main.addEventListener("drop", (e) => {
    e.preventDefault();
    ui.main.classList.remove("dragging");
    attach(e.dataTransfer.files);
  });
  $("new-chat").addEventListener("click", () => openConversation(null));
  ui.settingsToggle.addEventListener("click", () => {
    ui.settings.hidden = !ui.settings.hidden;
    ui.settingsToggle.setAttribute("aria-expanded", String(!ui.settings.hidden));
    if (!ui.settings.hidden) ui.system.focus();
  });
  ui.system.addEventListener("input", () => {
    settingsOf().system = ui.system.value;
    saveSettings();
  });
  ui.temperature.addEventListener("input", () => {
    const value = Number(ui.temperature.value);
    settingsOf().temperature = value;
    ui.temperatureValue.textContent = value.toFixed(1);
    saveSettings();
  });
  $("temperature-reset").addEventListener("click", () => {
    settingsOf().temperature = null;
    showSettings();
    saveSettings();
  });
  ui.toggle.addEventListener("click", () => {
    const open = ui.sidebar.classList.toggle("open");
    ui.toggle.setAttribute("aria-expanded", String(open));
  });
  $("export-md").addEventListener("click", () =>
    download(`${state.conversation.title}.md`, "text/markdown", store.toMarkdown(state.conversation)));
  $("export-json").addEventListener("click", () =>
    download(`${state.conversation.title}.json`, "application/json", JSON.stringify(state.conversation, null, 2)));
}

async function start() {
  wire();
  if (document.documentElement.dataset.demo === "1") $("demo-banner").hidden = false;
  if (document.documentElement.dataset.keyRequired === "1" && !apiKey()) {
    await askKey("This server needs an API key.");
  }
  try {
    await loadModels();
  } catch (err) {
    showStatus(`Cannot load the models: ${err.message}`);
  }
  const last = store.lastConversationId();
  const saved = last && (await store.listConversations()).find((c) => c.id === last);
  await startConversation(saved || store.newConversation());
  document.documentElement.dataset.readyAt = String(Math.round(performance.now()));
  document.documentElement.dataset.ready = "1"; // for tests and scripts driving the page
}

start();
