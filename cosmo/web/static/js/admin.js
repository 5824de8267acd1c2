// Knowledge-base editing (admins): list, create, change, delete articles.

import { $, api, dateTime, h, replace, requireUser, toast, topbar } from "./common.js";

let articles = [];
let current = null;  // the article being edited (null: a new one)

async function load() {
  ({ articles } = await api("GET", "/ui/kb"));
  renderList();
}

function renderList() {
  const filter = $("#filter").value.trim().toLowerCase();
  const shown = articles.filter((a) => !filter || a.title.toLowerCase().includes(filter) || a.tags.some((t) => t.includes(filter)));
  $("#count").textContent = String(articles.length);
  replace($("#list"), shown.length ? shown.map((a) => h("button.item", {
    type: "button", "aria-current": current && current.id === a.id ? "true" : "false", onclick: () => edit(a),
  }, h("b", a.title), h("small", a.tags.join(" · ") || "no tags"))) : h("div.empty", "No article."));
}

function edit(article) {
  current = article;
  $("#editor-title").textContent = article ? "Edit article" : "New article";
  $("#title").value = article ? article.title : "";
  $("#tags").value = article ? article.tags.join(", ") : "";
  $("#body").value = article ? article.body : "";
  $("#delete").hidden = !article;
  $("#stamp").textContent = article && article.updated_at ? `changed ${dateTime(article.updated_at)} by ${article.updated_by || "?"}` : "";
  renderList();
  $("#title").focus();
}

async function save(event) {
  event.preventDefault();
  const body = {
    title: $("#title").value.trim(),
    tags: $("#tags").value.split(",").map((t) => t.trim()).filter(Boolean),
    body: $("#body").value,
  };
  if (!body.title) { toast("An article needs a title", "bad"); return; }
  try {
    const { article } = current
      ? await api("PUT", `/ui/kb/${current.id}`, body)
      : await api("POST", "/ui/kb", body);
    toast("Saved", "ok");
    await load();
    edit(articles.find((a) => a.id === article.id) || article);
  } catch (error) { toast(error.message, "bad"); }
}

async function remove() {
  if (!current || !confirm(`Delete “${current.title}”?`)) return;
  try {
    await api("DELETE", `/ui/kb/${current.id}`);
    toast("Deleted", "ok");
    current = null;
    await load();
    edit(null);
  } catch (error) { toast(error.message, "bad"); }
}

document.addEventListener("DOMContentLoaded", async () => {
  const me = await requireUser();
  topbar($("#topbar"), me.user, { title: "Admin", links: [["/wallboard", "Wallboard"], ["/admin", "Knowledge base"]], live: false });
  $("#editor").addEventListener("submit", save);
  $("#delete").addEventListener("click", remove);
  $("#new").addEventListener("click", () => edit(null));
  $("#filter").addEventListener("input", renderList);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") { event.preventDefault(); save(event); }
  });
  await load();
  edit(null);
});
