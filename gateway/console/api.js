// The console's one way to the gateway: same origin, the key typed in the login form (sessionStorage).

const KEY = "aihub.key";

export function apiKey() { return sessionStorage.getItem(KEY) || ""; }
export function setApiKey(key) { key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`, code = null;
  try {
    const body = await response.json();
    message = body.error?.message || message;
    code = body.error?.code || null;
  } catch { /* not JSON */ }
  const error = new ApiError(response.status, message, code);
  if (response.status === 401) window.dispatchEvent(new CustomEvent("aihub:unauthorized"));
  return error;
}

export async function getJSON(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const response = await fetch(query.size ? `${path}?${query}` : path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// A stored file as an object URL (an <img src> cannot carry the bearer key).
export async function getBlobURL(path, params) {
  const response = await fetch(`${path}?${new URLSearchParams(params)}`, { headers: headers() });
  if (!response.ok) throw await failure(response);
  return URL.createObjectURL(await response.blob());
}

// POST a chat completion with stream: true; calls onHead(response) once, onEvent(json) per SSE event.
export async function streamChat(body, { onHead, onEvent, signal }) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failure(response);
  onHead?.(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const parsed = JSON.parse(data);
        if (parsed.error) throw new ApiError(500, parsed.error.message, parsed.error.code);
        onEvent(parsed);
      }
    }
  }
}
