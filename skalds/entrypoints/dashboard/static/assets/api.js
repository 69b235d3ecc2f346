// The HTTP API: JSON in and out, the API key (when one is set) in X-API-Key, and every refusal as an
// ApiError carrying the server's status, code, message and field.

const KEY_STORAGE = "skalds.apiKey";

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function setApiKey(value) {
  if (value) localStorage.setItem(KEY_STORAGE, value);
  else localStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error || null;
    this.field = body?.field || null;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
    this.body = body;
  }

  /** What an operator should read: the status in words, the server's message, and what to do next. */
  explain() {
    const hint = HINTS[this.status] || "";
    return `${WORDS[this.status] || `Error ${this.status}`}: ${this.message}${hint ? ` — ${hint}` : ""}`;
  }
}

const WORDS = {
  0: "Network error",
  401: "Refused (401, no or wrong API key)",
  403: "Refused (403, forbidden)",
  404: "Not found (404)",
  409: "Refused (409, conflict)",
  422: "Invalid (422)",
  503: "Unavailable (503)",
};

const HINTS = {
  401: "enter the API key in the top bar",
  409: "the task changed meanwhile; the page shows its current state",
};

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, { message: `${method} ${path} did not reach the server (${error.message})` });
  }
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { message: text.slice(0, 300) };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
