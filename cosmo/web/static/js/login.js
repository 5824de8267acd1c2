// Sign-in: POST /ui/login, then to the page the person asked for or their home.

import { $, whoami } from "./common.js";

function target(home) {
  const next = new URLSearchParams(location.search).get("next");
  // Only a path on this site: never "//elsewhere", "/\\elsewhere" (read as "//" by browsers) or a full URL.
  return next && /^\/(?![/\\])/.test(next) && !next.includes("\\") ? next : home;
}

async function submit(event) {
  event.preventDefault();
  const error = $("#error");
  const button = $("#submit");
  error.textContent = "";
  const username = $("#username").value.trim();
  const password = $("#password").value;
  if (!username || !password) { error.textContent = "Give your user name and password."; return; }
  button.disabled = true;
  try {
    const response = await fetch("/ui/login", {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      error.textContent = body.error || `Sign-in failed (${response.status})`;
      $("#password").select();
      return;
    }
    location.assign(target(body.home));
  } catch {
    error.textContent = "Cosmo cannot be reached.";
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login").addEventListener("submit", submit);
  const me = await whoami().catch(() => null);
  if (me) location.assign(target(me.home));
});
