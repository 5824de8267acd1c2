// One customer: details, editable notes and preferred channel, and the whole
// history across channels (the holistic view).

import { $, api, dateTime, h, initials, replace, requireUser, toast, topbar, words } from "./common.js";

const id = Number(location.pathname.split("/").pop());
let history = [];

function render(customer) {
  document.title = `${customer.name} · Cosmo`;
  $("#name").textContent = customer.name;
  $("#avatar").textContent = initials(customer.name);
  replace($("#tier"), h(`span.badge.${customer.tier}`, customer.tier));
  replace($("#details"),
    h("dt", "Account"), h("dd.mono", customer.account || "–"),
    h("dt", "Phone"), h("dd.mono", customer.phone || "–"),
    h("dt", "E-mail"), h("dd", customer.email || "–"),
    h("dt", "Language"), h("dd", customer.language || "–"),
    Object.entries(customer.attributes || {}).map(([k, v]) => [h("dt", words(k)), h("dd", String(v))]));
  $("#preferred").value = customer.preferred_channel || "";
  $("#notes").value = customer.notes || "";
}

function renderHistory() {
  const channel = $("#channel").value;
  const shown = history.filter((e) => !channel || e.channel === channel);
  $("#count").textContent = String(shown.length);
  if (!shown.length) { replace($("#history"), h("div.empty", "No interaction yet.")); return; }
  replace($("#history"), h("table",
    h("thead", h("tr", ["When", "Channel", "Queue", "Agent", "Outcome", "Disposition", "Notes"].map((t) => h("th", t)))),
    h("tbody", shown.map((e) => h("tr",
      h("td.when", dateTime(e.started_at)),
      h("td", h(`span.badge.${e.channel}`, e.channel)),
      h("td", e.queue || "–"), h("td", e.agent || "–"),
      h("td", words(e.outcome) || "–"), h("td", e.disposition ? words(e.disposition) : "–"),
      h("td", e.notes || ""))))));
}

async function save(event) {
  event.preventDefault();
  try {
    const { customer } = await api("PATCH", `/ui/customers/${id}`, {
      notes: $("#notes").value, preferred_channel: $("#preferred").value || null,
    });
    render(customer);
    $("#saved").textContent = "saved";
    toast("Customer saved", "ok");
  } catch (error) { toast(error.message, "bad"); }
}

document.addEventListener("DOMContentLoaded", async () => {
  const me = await requireUser();
  const links = me.user.role === "agent" ? [["/desk", "Desktop"]] : [["/wallboard", "Wallboard"]];
  topbar($("#topbar"), me.user, { title: "Customer", links, live: false });
  $("#notes-form").addEventListener("submit", save);
  $("#channel").addEventListener("change", renderHistory);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") { event.preventDefault(); save(event); }
  });
  try {
    const data = await api("GET", `/ui/customers/${id}`);
    render(data.customer);
    history = data.history;
    const channels = [...new Set(history.map((e) => e.channel))];
    $("#channel").append(...channels.map((c) => h("option", { value: c }, words(c))));
    renderHistory();
  } catch (error) {
    $("#name").textContent = error.status === 404 ? "No such customer" : "Cannot load the customer";
  }
});
