// Conversations live in this browser only (IndexedDB: room for attached images);
// the id of the one open last is in localStorage so a reload reopens it.

const DB = "g4f-server-chat";
const STORE = "conversations";
const LAST = "g4f.lastConversation";
let db = null;

function open() {
  if (db) return Promise.resolve(db);
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve((db = request.result));
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, action) {
  const store = (await open()).transaction(STORE, mode).objectStore(STORE);
  return new Promise((resolve, reject) => {
    const request = action(store);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export function newConversation() {
  return { id: crypto.randomUUID(), title: "New chat", messages: [], updated: Date.now() };
}

export async function listConversations() {
  const all = await run("readonly", (s) => s.getAll());
  return all.sort((a, b) => b.updated - a.updated);
}

export async function saveConversation(conversation) {
  conversation.updated = Date.now();
  await run("readwrite", (s) => s.put(conversation));
}

export async function deleteConversation(id) {
  await run("readwrite", (s) => s.delete(id));
  if (lastConversationId() === id) localStorage.removeItem(LAST);
}

export function lastConversationId() {
  return localStorage.getItem(LAST);
}

export function setLastConversation(id) {
  localStorage.setItem(LAST, id);
}

export function toMarkdown(conversation) {
  const parts = [`# ${conversation.title}`];
  for (const m of conversation.messages) {
    const who = m.role === "user" ? "User" : `Assistant${m.model ? ` (${m.provider} / ${m.model})` : ""}`;
    parts.push(`## ${who}\n\n${m.content}${m.error ? `\n\n> Error: ${m.error}` : ""}`);
  }
  return parts.join("\n\n") + "\n";
}
