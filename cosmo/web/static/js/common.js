// Shared helpers of the Cosmo pages: the signed-in person, JSON requests with the
// CSRF token, formatting, and small DOM helpers.  Plain ES module, no build step.

let me = null;

/** The signed-in person ({user, csrf, home, server_time, dispositions, reasons}); null when signed out. */
export async function whoami() {
  const response = await fetch("/ui/me", { credentials: "same-origin", cache: "no-store" });
  if (response.status === 401) return null;
  if (!response.ok) throw new Error(`/ui/me: ${response.status}`);
  me = await response.json();
  clock.offset = me.server_time * 1000 - Date.now();
  return me;
}

/** Sign-in required: the person, or off to the sign-in page. */
export async function requireUser() {
  const found = await whoami();
  if (!found) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
    throw new Error("signed out");
  }
  return found;
}

/** A JSON request; state-changing ones carry the CSRF token.  Throws {status, message}. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && me) headers["X-CSRF-Token"] = me.csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (response.status === 401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  }
  if (!response.ok) {
    const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

export async function signOut() {
  try { await api("POST", "/ui/logout"); } finally { location.assign("/login"); }
}

/** The server's clock (ms), from the offset measured at sign-in and by the socket. */
export const clock = { offset: 0, now() { return Date.now() + this.offset; } };

// ---- DOM ------------------------------------------------------------------------------------

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** h("td.num", {title: "x"}, "text", child...) — elements without innerHTML (no injection). */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs !== undefined && attrs !== null && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "class") el.className += ` ${value}`;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(text, kind = "") {
  let box = $(".toasts");
  if (!box) { box = h("div.toasts", { role: "status", "aria-live": "polite" }); document.body.append(box); }
  const item = h(`div.toast${kind ? "." + kind : ""}`, text);
  box.append(item);
  setTimeout(() => item.remove(), kind === "bad" ? 6000 : 3500);
}

// ---- formatting -----------------------------------------------------------------------------

/** 75 -> "1:15", 3700 -> "1:01:40". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${pad(mm)}:${pad(ss)}` : `${mm}:${pad(ss)}`;
}

/** Seconds since a POSIX time on the server's clock. */
export function since(ts) { return ts ? (clock.now() / 1000 - ts) : null; }

export function dateTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (sameDay) return `Today ${time}`;
  return `${d.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" })} ${time}`;
}

export const STATE_LABELS = {
  available: "Available", not_ready: "Not ready", reserved: "Ringing", busy: "Busy",
  wrap_up: "Wrap-up", logged_out: "Logged out",
};

export function statePill(state, reason) {
  const label = STATE_LABELS[state] || state;
  return h(`span.pill.${state}`, reason ? `${label} · ${words(reason)}` : label);
}

/** "follow-up" -> "Follow-up", "no-answer" -> "No answer". */
export function words(code) {
  if (!code) return "";
  const text = String(code).replace(/_/g, " ").replace(/-(?=answer)/, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function initials(name) {
  if (!name) return "?";
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

/** Is the keyboard in a text field (so single-key shortcuts stay quiet)? */
export function typing(event) {
  const t = event.target;
  return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
}

/** The top bar shared by the pages. */
export function topbar(root, user, { title, links = [], live = true } = {}) {
  const nav = h("nav", links.map(([href, text]) => h("a", { href, class: location.pathname === href ? "active" : "" }, text)));
  replace(root,
    h("div.brand", h("span.logo"), "Cosmo", title && links.length < 2 ? h("small", title) : null),
    nav,
    h("div.spacer"),
    live ? h("span.indicator", { id: "link", title: "CTI connection" }, h("span.dot"), h("span", "Connecting")) : null,
    h("span.who", h("b", user.name), user.extension ? ` · ${user.extension}` : "", ` · ${words(user.role)}`),
    h("button.link", { onclick: signOut, title: "Sign out" }, "Sign out"),
  );
}

export function linkState(state) {
  const el = document.getElementById("link");
  if (!el) return;
  const [dot, label] = el.children;
  dot.className = `dot ${state === "live" ? "ok" : state === "closed" ? "bad" : "warn"}`;
  label.textContent = { live: "Live", connecting: "Connecting", closed: "Offline" }[state] || state;
}
