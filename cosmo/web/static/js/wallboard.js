// The supervisor wallboard: queues, agents and waiting work, pushed by the CTI
// socket (never polled); a supervisor changes agents' states and re-prioritises
// or moves waiting items.

import { $, duration, h, replace, requireUser, since, statePill, toast, topbar, words, STATE_LABELS } from "./common.js";
import { CtiSocket } from "./cti.js";

const board = { queues: [], agents: new Map(), items: [], reasons: [] };
let socket;

function onMessage(message) {
  switch (message.type) {
    case "snapshot":
      board.queues = message.queues || [];
      board.items = message.items || [];
      board.agents = new Map((message.agents || []).map((a) => [a.extension, a]));
      break;
    case "wallboard":
      board.queues = message.queues;
      board.items = message.items;
      break;
    case "agent_state": board.agents.set(message.extension, message.agent); break;
    case "error": toast(message.message, "bad"); break;
    default: return;
  }
  render();
}

function level(queue) {
  if (queue.service_level === null || queue.service_level === undefined) return { text: "–", cls: "" };
  const percent = Math.round(queue.service_level * 100);
  return { text: `${percent}%`, value: percent, cls: percent >= 80 ? "" : percent >= 60 ? "caution" : "alert" };
}

function render() {
  renderSummary();
  renderTiles();
  renderAgents();
  renderItems();
}

function renderSummary() {
  const counts = { waiting: 0, available: 0, busy: 0, not_ready: 0 };
  for (const q of board.queues) counts.waiting += q.waiting;
  for (const a of board.agents.values()) {
    if (a.state === "available") counts.available += 1;
    else if (["reserved", "busy", "wrap_up"].includes(a.state)) counts.busy += 1;
    else if (a.state === "not_ready") counts.not_ready += 1;
  }
  const oldest = board.items.reduce((m, i) => Math.min(m, i.enqueued_at), Infinity);
  replace($("#summary"),
    h(`div.stat${counts.waiting ? ".warn" : ""}`, h("b", { id: "total-waiting" }, counts.waiting), h("span", "Waiting")),
    h("div.stat", h("b.tick", { "data-since": isFinite(oldest) ? oldest : "" }, isFinite(oldest) ? duration(since(oldest)) : "–"),
      h("span", "Longest wait")),
    h("div.stat.ok", h("b", counts.available), h("span", "Available")),
    h("div.stat.busy", h("b", counts.busy), h("span", "On work")),
    h("div.stat.paused", h("b", counts.not_ready), h("span", "Not ready")));
}

function renderTiles() {
  replace($("#tiles"), board.queues.map((q) => {
    const sl = level(q);
    const oldest = board.items.filter((i) => i.queue === q.name).reduce((m, i) => Math.min(m, i.enqueued_at), Infinity);
    const longest = isFinite(oldest) ? since(oldest) : q.longest_wait_s;
    const meter = h(`div.meter${sl.cls ? "." + sl.cls : ""}`, h("i"));
    meter.firstChild.style.setProperty("width", `${sl.value ?? 0}%`);
    const health = !q.agents_staffed && q.waiting ? "alert" : sl.cls === "alert" || longest > 60 ? "alert"
      : q.waiting || sl.cls === "caution" ? "caution" : "calm";
    return h(`article.card.tile.${health}`, { dataset: { queue: q.name } },
      h("header", h("h2", q.name), h("span.grow"),
        q.offered ? h("span.badge.ringing", `${q.offered} ringing`) : null,
        q.agents_staffed ? null : h("span.badge", "unstaffed")),
      h("div.figures",
        h(`div.figure${q.waiting ? (q.waiting > Math.max(1, q.agents_available) ? ".alert" : ".caution") : ""}`,
          h("div.value.waiting", q.waiting), h("div.label", "Waiting")),
        h(`div.figure${longest > 60 ? ".alert" : longest > 20 ? ".caution" : ""}`,
          h("div.value.tick", { "data-since": isFinite(oldest) ? oldest : "" }, q.waiting ? duration(longest) : "–"),
          h("div.label", "Longest wait")),
        h("div.figure", h("div.value", sl.text), h("div.label", "Service level")),
        h("div.figure", h("div.value", q.estimated_wait_s === null ? "–" : duration(q.estimated_wait_s)), h("div.label", "Est. wait"))),
      meter,
      h("div.staff",
        h("span", h("b", q.agents_available), " available"),
        h("span", h("b", q.agents_busy), " busy"),
        h("span", h("b", q.agents_not_ready), " not ready")));
  }));
}

function stateSelect(agent) {
  const select = h("select.compact", { "aria-label": `State of ${agent.name}` },
    h("option", { value: "" }, "Set…"),
    h("option", { value: "available" }, "Available"),
    board.reasons.map((r) => h("option", { value: `not_ready:${r}` }, `Not ready — ${words(r)}`)),
    h("option", { value: "logged_out" }, "Log out"));
  select.addEventListener("change", async () => {
    const [state, reason] = select.value.split(":");
    if (!state) return;
    try {
      await socket.command({ type: "agent_state", extension: agent.extension, state, ...(reason ? { reason } : {}) });
      toast(`${agent.name}: ${STATE_LABELS[state]}${reason ? " (" + words(reason) + ")" : ""}`, "ok");
    } catch (error) { toast(error.message, "bad"); }
    select.value = "";
  });
  return select;
}

function renderAgents() {
  const all = $("#agent-filter").value === "all";
  const order = { reserved: 0, busy: 1, wrap_up: 2, available: 3, not_ready: 4, logged_out: 5 };
  const agents = Array.from(board.agents.values())
    .filter((a) => all || a.state !== "logged_out")
    .sort((a, b) => (order[a.state] - order[b.state]) || a.name.localeCompare(b.name));
  $("#agents-count").textContent = String(agents.length);
  if (!agents.length) { replace($("#agents"), h("div.empty", "No agent logged in.")); return; }
  replace($("#agents"), h("table",
    h("thead", h("tr", h("th", "Agent"), h("th", "State"), h("th.num", "In state"), h("th", "Queues"), h("th", ""))),
    h("tbody", agents.map((a) => h("tr", { dataset: { extension: a.extension } },
      h("td", h("b", a.name), h("span.muted", ` ${a.extension}`)),
      h("td", statePill(a.state, a.state === "not_ready" ? a.reason : a.pending_reason ? `then ${a.pending_reason}` : null)),
      h("td.num.tick", { "data-since": a.since }, duration(since(a.since))),
      h("td.muted", (a.queues || []).join(", ")),
      h("td.num", stateSelect(a)))))));
}

async function itemCommand(message, done) {
  try { await socket.command(message); toast(done, "ok"); } catch (error) { toast(error.message, "bad"); }
}

function renderItems() {
  const items = board.items;
  $("#items-count").textContent = items.length ? String(items.length) : "";
  if (!items.length) { replace($("#items"), h("div.empty", "Nobody waiting.")); return; }
  const queues = board.queues.map((q) => q.name);
  replace($("#items"), h("table",
    h("thead", h("tr", h("th", "Queue"), h("th", "Who"), h("th.num", "Waited"), h("th", "Priority"), h("th", "Move to"))),
    h("tbody", items.map((item) => {
      const data = item.data || {};
      const who = (data.customer && data.customer.name) || data.caller || data.from || item.id;
      const move = h("select.compact", { "aria-label": `Move ${who}` }, h("option", { value: "" }, "–"),
        queues.filter((q) => q !== item.queue).map((q) => h("option", { value: q }, q)));
      move.addEventListener("change", () => move.value && itemCommand({ type: "move", item_id: item.id, queue: move.value }, `Moved to ${move.value}`));
      return h("tr", { dataset: { item: item.id } },
        h("td", item.queue),
        h("td", h("span", who), " ", h(`span.badge.${item.channel}`, item.channel)),
        h("td.num.tick", { "data-since": item.enqueued_at }, duration(since(item.enqueued_at))),
        h("td", h("span.prio",
          h("button.small", { title: "Lower priority", onclick: () => itemCommand({ type: "reprioritise", item_id: item.id, priority: item.priority - 1 }, "Priority lowered") }, "−"),
          h("b", item.priority),
          h("button.small", { title: "Raise priority", onclick: () => itemCommand({ type: "reprioritise", item_id: item.id, priority: item.priority + 1 }, "Priority raised") }, "+"))),
        h("td", move));
    }))));
}

function tick() {
  for (const el of document.querySelectorAll(".tick[data-since]")) {
    const ts = parseFloat(el.dataset.since);
    if (isFinite(ts)) el.textContent = duration(since(ts));
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const me = await requireUser();
  board.reasons = me.reasons.filter((r) => r !== "no-answer");
  const links = me.user.role === "admin" ? [["/wallboard", "Wallboard"], ["/admin", "Knowledge base"]] : [];
  topbar($("#topbar"), me.user, { title: "Wallboard", links });
  $("#agent-filter").addEventListener("change", renderAgents);
  socket = new CtiSocket(onMessage);
  window.cosmoBoard = { board, socket };
  socket.connect();
  setInterval(tick, 1000);
});
