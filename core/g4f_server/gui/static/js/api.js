// The public API of g4f-server, called as any OpenAI client calls it: the page has no
// private routes. Errors become ApiError with the server's readable message.

const KEY_STORAGE = "g4f.apiKey";
let sessionKey = null; // a key not remembered lives only in this page's memory

export class ApiError extends Error {
  constructor(message, status = 0, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export function apiKey() {
  return sessionKey ?? localStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key, remember) {
  sessionKey = key;
  if (remember) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function headers(json) {
  const out = {};
  if (json) out["Content-Type"] = "application/json";
  const key = apiKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let code = null;
  try {
    const body = await response.json();
    if (body?.error?.message) ({ message, code } = body.error);
  } catch {
    // not JSON (a proxy's error page): the status line is all there is
  }
  return new ApiError(message, response.status, code);
}

async function call(path, { body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("The server cannot be reached. Is it running?");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

export async function listModels() {
  const body = await (await call("/v1/models")).json();
  return body.data;
}

export async function listProviders() {
  const body = await (await call("/v1/providers")).json();
  return body.data;
}

export async function getStatus() {
  return (await call("/v1/status")).json();
}

// Yields the chunks of a streamed chat completion; an error chunk is thrown.
export async function* streamChat(request, signal) {
  const response = await call("/v1/chat/completions", { body: { ...request, stream: true }, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of frame.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(chunk.error.message, 502, chunk.error.code);
        yield chunk;
      }
    }
  }
  throw new ApiError("The connection closed before the answer was complete.");
}

export async function generateImage(prompt, model) {
  const response = await call("/v1/images/generations", {
    body: { prompt, model, n: 1, response_format: "url" },
  });
  return response.json();
}

export async function speak(text, model) {
  const response = await call("/v1/audio/speech", {
    body: { input: text, model, response_format: "mp3" },
  });
  return response.blob();
}
