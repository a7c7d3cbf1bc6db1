// The dashboard's only way to the server: the public /v1 and /v2 APIs with the user's key.

const KEY = "runplane.apiKey";

export const auth = {
  get key() { return localStorage.getItem(KEY) || ""; },
  set(key) { localStorage.setItem(KEY, key); },
  clear() { localStorage.removeItem(KEY); },
};

/** A refusal from the server: `{error, message, status, field?}`. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.message || body.error)) || (typeof body === "string" && body)
      || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.field = body && body.field ? body.field : null;
    this.body = body;
  }
}

/** JSON request; resolves to the answer's body, rejects with ApiError. */
export async function api(path, { method = "GET", body, key = auth.key, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method, headers, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const textBody = await r.text();
  let data = textBody;
  if (!raw) {
    try { data = textBody ? JSON.parse(textBody) : null; } catch { data = textBody; }
  }
  if (!r.ok) {
    let err = data;
    if (raw) { try { err = JSON.parse(textBody); } catch { /* plain text */ } }
    const e = new ApiError(r.status, err);
    if (r.status === 401) window.dispatchEvent(new CustomEvent("runplane:unauthorized", { detail: e }));
    throw e;
  }
  return data;
}

/** Like api() but a 404 (a route not served yet, or a resource gone) resolves to `fallback`. */
export async function optional(path, fallback = null) {
  try {
    return await api(path);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return fallback;
    throw e;
  }
}
