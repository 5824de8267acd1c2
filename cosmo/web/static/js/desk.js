// The agent desktop: state, the screen-pop, call controls, e-mail, wrap-up, click-to-dial.
// Everything arrives on the CTI socket; commands go back on it (docs/CTI.md).  E-mail is
// read and answered through /ui/ (email.js); mail content is only ever set as text.

import {
  $, $$, api, clock, dateTime, duration, h, initials, linkState, replace, requireUser, signOut, since, statePill,
  toast, typing, words, STATE_LABELS,
} from "./common.js";
import { CtiSocket } from "./cti.js";
import { insertIntoReply, loadTemplates, mailActions, renderMail } from "./email.js";

const desk = {
  me: null,
  agent: null,
  offer: null,
  items: new Map(),     // item_id -> context of work in hand
  calls: new Map(),     // call_id -> call
  wrap: new Map(),      // item_id -> finished work awaiting a disposition
  queues: [],
  agents: [],
  phone: null,
  disposition: null,
  transfer: null,       // {call_id, consulting: bool}
  selected: null,       // what the agent looks at: "offer", an item_id in hand, or null (the latest)
  mail: new Map(),      // item_id -> {data, error, loading} of an e-mail offered or in hand
  drafts: new Map(),    // item_id -> {body, template} being written
  templates: [],        // the reply templates [{name, text}]
  kbResults: null,      // articles found by a search (instead of the suggestions)
};

let socket;

// ---- the socket -----------------------------------------------------------------------------

function onMessage(message) {
  switch (message.type) {
    case "snapshot": {
      desk.agent = message.agent;
      desk.offer = message.offer;
      desk.items = new Map((message.items || []).map((c) => [c.item_id, c]));
      desk.calls = new Map((message.calls || []).map((c) => [c.call_id, c]));
      desk.wrap = new Map((message.wrap || []).map((c) => [c.item_id, c]));
      desk.queues = message.queues || [];
      desk.agents = message.agents || [];
      desk.phone = message.phone_registered;
      desk.selected = desk.offer ? "offer" : null;
      break;
    }
    case "agent_state": desk.agent = message.agent; break;
    case "offer":
      desk.offer = message;
      // The pop takes the screen, unless the agent is writing a reply: then its tab says it is there.
      if (!(document.activeElement && document.activeElement.id === "reply-body")) desk.selected = "offer";
      desk.poppedAt = Date.now();  // when the pop reached the screen (tests compare it with the INVITE)
      break;
    case "offer_update":
      for (const target of [desk.offer, desk.items.get(message.item_id)]) {
        if (target && target.item_id === message.item_id) Object.assign(target, {
          customer: message.customer, history: message.history, articles: message.articles });
      }
      break;
    case "offer_withdrawn":
      if (desk.offer && desk.offer.item_id === message.item_id) {
        desk.offer = null;
        if (desk.selected === "offer") desk.selected = null;
        if (!desk.items.has(message.item_id)) desk.mail.delete(message.item_id);
        toast(message.reason === "no-answer" ? "The offer rang out" : `Offer withdrawn (${words(message.reason)})`);
      }
      break;
    case "assigned": {
      const context = desk.offer && desk.offer.item_id === message.item_id ? desk.offer : { item_id: message.item_id };
      desk.offer = null;
      desk.items.set(message.item_id, { ...context, call_id: message.call_id, channel: message.channel, queue: message.queue });
      desk.selected = message.item_id;
      if (message.channel === "email") desk.mail.delete(message.item_id);  // read again: now in hand
      break;
    }
    case "call":
      if (message.state === "ended") {
        desk.calls.delete(message.call_id);
        if (desk.transfer && desk.transfer.call_id === message.call_id) desk.transfer = null;
      } else {
        desk.calls.set(message.call_id, { ...(desk.calls.get(message.call_id) || {}), ...message });
      }
      break;
    case "completed": {
      const context = desk.items.get(message.item_id) || {};
      desk.items.delete(message.item_id);
      desk.mail.delete(message.item_id);
      desk.drafts.delete(message.item_id);
      if (desk.selected === message.item_id) desk.selected = null;
      desk.wrap.set(message.item_id, { ...context, ...message, customer: context.customer || null });
      desk.disposition = null;
      break;
    }
    case "wrap_up_saved": desk.wrap.delete(message.item_id); break;
    case "phone": desk.phone = message.registered; break;
    case "error": toast(message.message, "bad"); break;
    default: break;
  }
  render();
  if (message.type === "offer") socket.raw({ type: "seen", item_id: message.item_id });  // on screen: let the phone ring
}

async function command(message, done) {
  try {
    const result = await socket.command(message);
    if (done) toast(done, "ok");
    return result;
  } catch (error) {
    toast(error.message || "refused", "bad");
    return null;
  }
}

// ---- what is in focus -----------------------------------------------------------------------

/** The interaction the desk is about now: an offer, work in hand (the one chosen), a dialled call, or wrap-up. */
function focus() {
  if (desk.offer && (desk.selected === "offer" || !desk.items.has(desk.selected))) return { kind: "offer", context: desk.offer };
  const inHand = desk.items.get(desk.selected) || Array.from(desk.items.values()).pop();
  if (inHand) return { kind: "connected", context: inHand, call: inHand.call_id ? desk.calls.get(inHand.call_id) : null };
  const dialled = Array.from(desk.calls.values()).find((c) => !c.item_id);
  if (dialled) return { kind: "dialled", context: { caller: dialled.number, customer: null }, call: dialled };
  const finished = Array.from(desk.wrap.values()).pop();
  if (finished) return { kind: "wrap", context: finished };
  return { kind: "idle", context: null };
}

// ---- rendering ---------------------------------------------------------------------------------

function render() {
  renderState();
  const current = focus();
  renderTabs(current);
  renderInteraction(current);
  renderMail(desk, current, mailHooks);
  renderCustomer(current.context);
  renderHistory(current.context);
  renderArticles(current.context);
  renderWrap();
  tick();
}

function renderState() {
  const agent = desk.agent;
  const pill = $("#state-pill");
  if (!agent) { replace(pill, statePill("logged_out")); return; }
  // The select is the agent's own choice (presence); the pill shows the work the ACD gave them.
  const working = ["reserved", "busy", "wrap_up"].includes(agent.state);
  replace(pill, working ? statePill(agent.state) : null);
  const select = $("#state-select");
  const value = agent.state === "not_ready" ? `not_ready:${agent.reason}` : agent.state === "logged_out" ? "logged_out" : "available";
  if (document.activeElement !== select) select.value = value;
  select.className = `presence-${value.split(":")[0]}`;
  const phone = $("#phone");
  phone.firstChild.className = `dot ${desk.phone === true ? "ok" : desk.phone === false ? "bad" : ""}`;
  phone.lastChild.textContent = desk.phone === true ? "Phone ready" : desk.phone === false ? "No phone" : "Phone";
  const banner = $("#banner");
  if (agent.pending_reason) {
    banner.hidden = false;
    banner.textContent = `Not ready (${words(agent.pending_reason)}) once this work is done.`;
  } else {
    banner.hidden = true;
  }
}

/** With more than one interaction at hand (an offer, e-mails in hand), a tab for each. */
function renderTabs(current) {
  const box = $("#work-tabs");
  const entries = [];
  if (desk.offer) entries.push(["offer", desk.offer, "Incoming"]);
  for (const context of desk.items.values()) entries.push([context.item_id, context, null]);
  if (entries.length < 2) { box.hidden = true; replace(box); return; }
  box.hidden = false;
  const shown = current.kind === "offer" ? "offer" : current.context && current.context.item_id;
  replace(box, entries.map(([key, context, label]) => h(`button.tab${key === "offer" ? ".incoming" : ""}`, {
    type: "button", role: "tab", "aria-selected": key === shown ? "true" : "false", dataset: { item: context.item_id },
    onclick: () => { desk.selected = key; render(); },
  }, h(`span.badge.${context.channel}`, context.channel === "voice" ? "call" : context.channel),
    h("span.tab-label", label ? `${label}: ${workLabel(context)}` : workLabel(context)))));
}

function workLabel(context) {
  if (context.channel === "email") return context.subject || context.sender || "E-mail";
  return (context.customer && context.customer.name) || context.caller || context.item_id;
}

function header(kind, context, call) {
  const email = context.channel === "email";
  const labels = {
    offer: `Incoming ${context.channel === "voice" ? "call" : context.channel === "email" ? "e-mail" : context.channel}`,
    connected: email ? "E-mail in hand" : call && call.state === "held" ? "On hold" : "On call",
    dialled: call && call.state === "dialing" ? "Calling…" : call && call.state === "held" ? "On hold" : "On call",
    wrap: "Wrap-up",
  };
  const parts = [labels[kind]];
  if (context.queue) parts.push(`queue ${context.queue}`);
  if (kind === "dialled" && call && call.number) parts.push(call.number);
  const timers = h("span.timers");
  const timer = (label, attrs) => h("span", `${label} `, h("b.timer", attrs));
  if (kind === "offer") {
    if (context.enqueued_at) timers.append(timer(email ? "waiting" : "waited", { "data-since": context.enqueued_at }));
    if (context.expires_at) timers.append(timer("rings", { "data-until": context.expires_at }));
  } else if (kind === "wrap") {
    const until = desk.agent && desk.agent.wrap_up_until;
    if (until) timers.append(timer("ends in", { "data-until": until }));
  } else if (call && call.since) {
    timers.append(timer(call.state === "dialing" ? "ringing" : "talking", { "data-since": call.since }));
  }
  return h("div.strip", h("span", parts.join(" · ")), timers);
}

function customerLine(context) {
  const customer = context.customer;
  const name = customer ? customer.name : (context.caller || context.sender || "Unknown caller");
  const sub = [];
  if (context.caller) sub.push(h("span.mono", context.caller));
  if (context.sender) sub.push(h("span", context.sender));
  if (customer && customer.account) sub.push(h("span", "Account ", h("b.mono", customer.account)));
  if (context.subject) sub.push(h("span", `“${context.subject}”`));
  return h("div.main",
    h(`div.avatar${customer ? "" : ".unknown"}`, customer ? initials(customer.name) : "?"),
    h("div.who-block",
      h("div.row", h("h1", { id: "pop-name" }, name),
        customer && customer.tier ? h(`span.badge.${customer.tier}`, customer.tier) : null,
        !customer ? h("span.badge", "not identified") : null),
      h("div.sub", sub),
      ivrChips(context.ivr),
      // An e-mail's whole text is in the panel below; the snippet is for the other channels.
      context.snippet && context.channel !== "email" ? h("div.snippet", context.snippet) : null));
}

function ivrChips(ivr) {
  const entries = Object.entries(ivr || {}).filter(([, v]) => v !== null && v !== "" && typeof v !== "object");
  if (!entries.length) return null;
  return h("div.chips", { id: "ivr", "aria-label": "Entered in the IVR" },
    h("span.hint", "IVR:"),
    entries.map(([key, value]) => h("span.chip", h("span", words(key)), h("b", String(value)))));
}

function renderInteraction(current) {
  const card = $("#interaction");
  card.className = "card interaction";
  const { kind, context, call } = current;
  if (kind === "idle") {
    const state = desk.agent ? desk.agent.state : "logged_out";
    const available = state === "available";
    const hint = available ? "You are available: the next call or e-mail pops here."
      : state === "logged_out" ? "You are logged out." : `You are ${STATE_LABELS[state].toLowerCase()}.`;
    replace(card, h("div.idle", h("div.big", available ? "Waiting for work" : "No interaction"), h("div", hint),
      available ? null : h("button.primary.big", { id: "go-available", onclick: () => setState("available") },
        "Go available ", h("kbd", "G"))));
    return;
  }
  card.classList.add(kind === "dialled" ? "connected" : kind);
  if (call && call.state === "held") card.classList.add("held");
  const children = [header(kind, context, call)];
  if (kind === "offer" && context.expires_at) children.push(h("div.countdown", h("i", { id: "countdown" })));
  children.push(customerLine(context));
  const actions = h("div.actions");
  if (kind === "offer") {
    actions.append(
      h("button.good.big", { id: "accept", onclick: accept }, "Accept ", h("kbd", "A")),
      h("button.big", { id: "reject", onclick: reject }, "Reject ", h("kbd", "R")));
  } else if ((kind === "connected" || kind === "dialled") && call) {
    const held = call.state === "held";
    actions.append(
      h(`button${held ? ".active" : ""}`, { id: "hold", onclick: toggleHold, disabled: call.state === "dialing" },
        held ? "Resume " : "Hold ", h("kbd", "H")),
      h("button", { id: "transfer", onclick: openTransfer, disabled: call.state === "dialing" }, "Transfer ", h("kbd", "T")),
      h("span.grow"),
      h("button.danger", { id: "hangup", onclick: hangup }, "Hang up ", h("kbd", "X")));
  } else if (kind === "connected" && context.channel === "email") {
    actions.append(...mailActions(desk, context, mailHooks));
  } else if (kind === "wrap") {
    actions.append(h("span.muted", "Pick a disposition and save it to take the next call."));
  }
  children.push(actions);
  if (desk.transfer && call && desk.transfer.call_id === call.call_id) children.push(transferPanel(call));
  replace(card, children);
}

function transferPanel(call) {
  const kind = h("select", { id: "transfer-kind" },
    h("option", { value: "queue" }, "Queue"), h("option", { value: "agent" }, "Agent"), h("option", { value: "number" }, "Number"));
  const targetBox = h("span");
  const fill = () => {
    let target;
    if (kind.value === "queue") target = h("select", { id: "transfer-target" }, desk.queues.map((q) => h("option", { value: q.name }, q.name)));
    else if (kind.value === "agent") {
      target = h("select", { id: "transfer-target" }, desk.agents.map((a) =>
        h("option", { value: a.extension }, `${a.name} (${a.extension}) — ${STATE_LABELS[a.state] || a.state}`)));
    } else target = h("input", { id: "transfer-target", inputmode: "tel", placeholder: "+1 555 0199" });
    replace(targetBox, h("label", "Target", target));
  };
  kind.addEventListener("change", fill);
  fill();
  const go = (type) => async () => {
    const target = $("#transfer-target").value.trim();
    if (!target) return;
    const done = await command({ type, call_id: call.call_id, kind: kind.value, target },
      type === "transfer" ? `Transferred to ${target}` : `Consulting ${target}`);
    if (done && type === "consult") desk.transfer = { call_id: call.call_id, consulting: true };
    else if (done) desk.transfer = null;
    render();
  };
  if (desk.transfer.consulting) {
    return h("div.transfer-panel",
      h("span", "Consulting — the caller is on hold."), h("span.grow"),
      h("button.primary", { onclick: () => finishConsult("complete_transfer") }, "Complete transfer"),
      h("button", { onclick: () => finishConsult("cancel_transfer") }, "Back to caller"));
  }
  return h("div.transfer-panel", h("label", "Transfer to", kind), targetBox, h("span.grow"),
    h("button.primary", { id: "transfer-blind", onclick: go("transfer") }, "Transfer now"),
    h("button", { id: "transfer-consult", onclick: go("consult") }, "Consult first"),
    h("button.ghost", { onclick: () => { desk.transfer = null; render(); } }, "Cancel"));
}

async function finishConsult(type) {
  const call = desk.transfer && desk.transfer.call_id;
  if (!call) return;
  if (await command({ type, call_id: call }, type === "complete_transfer" ? "Transfer completed" : "Back with the caller")) {
    desk.transfer = null;
    render();
  }
}

function renderCustomer(context) {
  const box = $("#customer");
  const link = $("#customer-link");
  const customer = context && context.customer;
  if (!customer) {
    link.hidden = true;
    replace(box, h("div.empty", context ? "This caller is not a known customer. Find them on the right." : "No customer in view."));
    return;
  }
  link.hidden = false;
  link.href = `/customers/${customer.id}`;
  const attributes = Object.entries(customer.attributes || {});
  replace(box,
    h("dl.kv.two",
      h("dt", "Name"), h("dd", customer.name),
      h("dt", "Account"), h("dd.mono", customer.account || "–"),
      h("dt", "Phone"), h("dd.mono", customer.phone || "–"),
      h("dt", "E-mail"), h("dd", customer.email || "–"),
      h("dt", "Tier"), h("dd", words(customer.tier || "standard")),
      h("dt", "Prefers"), h("dd", customer.preferred_channel ? words(customer.preferred_channel) : "–"),
      attributes.map(([key, value]) => [h("dt", words(key)), h("dd", String(value))])),
    customer.notes ? h("div.notes-box", customer.notes) : null);
}

function historyTable(history) {
  return h("table",
    h("thead", h("tr", ["When", "Channel", "Queue", "Agent", "Outcome", "Disposition", "Notes"].map((t) => h("th", t)))),
    h("tbody", history.map((entry) => h("tr",
      h("td.when", dateTime(entry.started_at)),
      h("td", h(`span.badge.${entry.channel}`, entry.channel)),
      h("td", entry.queue || "–"),
      h("td", entry.agent || "–"),
      h("td", words(entry.outcome) || "–"),
      h("td", entry.disposition ? words(entry.disposition) : "–"),
      h("td", h("div.notes", { title: entry.notes || "" }, entry.notes || ""))))));
}

function renderHistory(context) {
  const box = $("#history");
  const count = $("#history-count");
  const history = context && context.history;
  if (!context || !context.customer) {
    count.textContent = "";
    replace(box, h("div.empty", "The customer's calls, e-mails and call-backs appear here."));
    return;
  }
  if (history === null || history === undefined) { count.textContent = ""; replace(box, h("div.empty", "Looking up…")); return; }
  count.textContent = history.length ? String(history.length) : "";
  replace(box, history.length ? historyTable(history) : h("div.empty", "First contact: no previous interactions."));
}

function renderArticles(context) {
  const box = $("#articles");
  const searched = desk.kbResults;
  const articles = searched || (context && context.articles) || [];
  $("#kb-title").textContent = searched ? "Articles found" : "Suggested articles";
  if (!articles.length) { replace(box, h("div.empty", context ? "No article matches this interaction." : "Articles matching the caller's choice appear here.")); return; }
  const current = focus();
  const replying = current.kind === "connected" && current.context.channel === "email";
  replace(box, articles.map((article, index) => h("details", { open: index === 0 ? true : null },
    h("summary", h("b", article.title), replying ? h("span.grow") : null,
      replying ? h("button.small.insert", { type: "button", title: "Insert this answer into the reply",
        onclick: (event) => { event.preventDefault(); insertIntoReply(desk, current.context.item_id, article.body); } },
      "Insert") : null),
    h("div.text", article.body),
    article.tags && article.tags.length ? h("div.tags.chips", article.tags.map((t) => h("span.chip", t))) : null)));
}

function renderWrap() {
  const card = $("#wrap-card");
  const finished = Array.from(desk.wrap.values()).pop();
  if (!finished) { card.hidden = true; return; }
  card.hidden = false;
  const who = finished.customer ? finished.customer.name
    : finished.caller || (finished.subject ? `“${finished.subject}”` : null) || finished.sender || finished.item_id;
  $("#wrap-what").textContent = who;
  const codes = (socket.welcome && socket.welcome.dispositions) || desk.me.dispositions;
  replace($("#dispositions"), codes.map((code, index) => h("button", {
    type: "button", "aria-pressed": desk.disposition === code ? "true" : "false", dataset: { code },
    onclick: () => { desk.disposition = code; renderWrap(); },
  }, index < 9 ? h("kbd", String(index + 1)) : null, words(code))));
  $("#wrap-save").disabled = !desk.disposition;
  $("#wrap-ready").disabled = !desk.disposition;
}

// ---- commands ------------------------------------------------------------------------------------

/** What the e-mail panel needs of the desk. */
const mailHooks = { render: () => render(), toast };

function accept() { if (desk.offer) command({ type: "answer", item_id: desk.offer.item_id }); }
function reject() { if (desk.offer) command({ type: "reject", item_id: desk.offer.item_id }, "Offer rejected"); }

function activeCall() {
  const current = focus();
  return current.call || null;
}

function toggleHold() {
  const call = activeCall();
  if (call) command({ type: "hold", call_id: call.call_id, on: call.state !== "held" });
}

function hangup() {
  const call = activeCall();
  if (call) command({ type: "hangup", call_id: call.call_id });
}

function openTransfer() {
  const call = activeCall();
  if (!call) return;
  desk.transfer = desk.transfer && desk.transfer.call_id === call.call_id ? null : { call_id: call.call_id, consulting: false };
  render();
  const target = $("#transfer-kind");
  if (target) target.focus();
}

async function saveWrap(ready) {
  const finished = Array.from(desk.wrap.values()).pop();
  if (!finished || !desk.disposition) { toast("Pick a disposition first", "bad"); return; }
  const notes = $("#wrap-notes").value;
  const result = await command({
    type: "wrap_up", item_id: finished.item_id, disposition: desk.disposition, notes, ready,
    customer_id: finished.customer_id ?? undefined,
  }, ready ? "Saved — you are available" : "Disposition saved");
  if (result) {
    desk.wrap.delete(finished.item_id);
    desk.disposition = null;
    $("#wrap-notes").value = "";
    if (result.ready_error) toast(result.ready_error, "bad");
    render();
  }
}

async function setState(value) {
  const [state, reason] = value.split(":");
  await command(reason ? { type: "state", state, reason } : { type: "state", state });
}

async function dial(event) {
  event.preventDefault();
  const number = $("#dial-number").value.replace(/[\s()./-]/g, "");
  if (!number) return;
  if (await command({ type: "dial", number }, `Calling ${number}: answer your phone`)) $("#dial-number").value = "";
}

async function search(event) {
  event.preventDefault();
  const q = $("#search-q").value.trim();
  const box = $("#search-results");
  if (!q) { replace(box); return; }
  try {
    const { customers } = await api("GET", `/ui/customers?q=${encodeURIComponent(q)}`);
    replace(box, customers.length ? customers.map((c) => h("div.row",
      h("a", { href: `/customers/${c.id}`, target: "_blank", rel: "noopener" }, c.name),
      c.account ? h("span.mono.muted", c.account) : null, h("span.grow"),
      c.phone ? h("button.small", { onclick: () => command({ type: "dial", number: c.phone, customer_id: c.id }, `Calling ${c.name}`) }, "Call") : null))
      : h("div.empty", "No customer found."));
  } catch (error) { toast(error.message, "bad"); }
}

async function searchArticles(event) {
  event.preventDefault();
  const q = $("#kb-q").value.trim();
  if (!q) { desk.kbResults = null; render(); return; }
  try {
    const { articles } = await api("GET", `/ui/kb?q=${encodeURIComponent(q)}`);
    desk.kbResults = articles;
    render();
  } catch (error) { toast(error.message, "bad"); }
}

// ---- time --------------------------------------------------------------------------------------------

function tick() {
  const agent = desk.agent;
  const stateSince = $("#state-since");
  if (stateSince) stateSince.textContent = agent ? duration(since(agent.since)) : "";
  for (const el of $$(".timer[data-since]")) {
    const ts = parseFloat(el.dataset.since);
    el.textContent = isFinite(ts) ? duration(since(ts)) : "";
  }
  for (const el of $$(".timer[data-until]")) {
    const ts = parseFloat(el.dataset.until);
    el.textContent = isFinite(ts) ? duration(Math.max(0, -since(ts))) : "";
  }
  const bar = $("#countdown");
  if (bar && desk.offer && desk.offer.expires_at) {
    const total = desk.offer.expires_at - desk.offer.ts;
    const remaining = desk.offer.expires_at - clock.now() / 1000;
    const fraction = total > 0 ? Math.min(1, Math.max(0, remaining / total)) : 0;
    bar.style.setProperty("width", `${(fraction * 100).toFixed(1)}%`);
  }
}

// ---- keyboard ------------------------------------------------------------------------------------------

function keys(event) {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && desk.wrap.size) {
    event.preventDefault();
    saveWrap(true);
    return;
  }
  if (event.key === "Escape" && desk.transfer) { desk.transfer = null; render(); return; }
  const codes = (socket.welcome && socket.welcome.dispositions) || [];
  const digit = /^Digit[1-9]$/.test(event.code) ? Number(event.code.slice(5)) : null;
  // 1-9 pick a disposition; Alt+1-9 also while typing the notes.
  if (desk.wrap.size && digit && codes[digit - 1] && (event.altKey || !typing(event)) && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    desk.disposition = codes[digit - 1];
    renderWrap();
    return;
  }
  if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  const actions = {
    a: accept, r: reject, h: toggleHold, x: hangup, t: openTransfer,
    g: () => setState("available"),
    p: () => setState(`not_ready:${pauseReason()}`),
    d: () => $("#dial-number").focus(),
    e: () => { const box = $("#reply-body"); if (box) box.focus(); },
    n: () => desk.wrap.size && $("#wrap-notes").focus(),
    "/": () => $("#search-q").focus(),
  };
  const action = actions[key];
  if (action) { event.preventDefault(); action(); }
}

function pauseReason() {
  const reasons = (socket.welcome && socket.welcome.reasons) || desk.me.reasons;
  return reasons.includes("break") ? "break" : reasons.find((r) => r !== "no-answer") || reasons[0];
}

// ---- start ------------------------------------------------------------------------------------------------

function topbar(me) {
  const reasons = me.reasons.filter((r) => r !== "no-answer");
  const select = h("select", { id: "state-select", "aria-label": "Your state" },
    h("option", { value: "available" }, "Available"),
    h("optgroup", { label: "Not ready" }, reasons.map((r) => h("option", { value: `not_ready:${r}` }, `Not ready — ${words(r)}`)),
      h("option", { value: "not_ready:no-answer", hidden: true }, "Not ready — No answer")),
    h("option", { value: "logged_out" }, "Logged out"));
  select.addEventListener("change", () => setState(select.value));
  replace($("#topbar"),
    h("div.brand", h("span.logo"), "Cosmo", h("small", "Agent desktop")),
    h("div.statectl", h("span", { id: "state-pill" }), select, h("span.since", { id: "state-since", title: "Time in this state" })),
    h("div.spacer"),
    h("span.indicator", { id: "phone", title: "Your phone" }, h("span.dot"), h("span", "Phone")),
    h("span.indicator", { id: "link", title: "CTI connection" }, h("span.dot"), h("span", "Connecting")),
    h("span.who", h("b", me.user.name), ` · ${me.user.extension}`),
    h("button.link", { onclick: signOut }, "Sign out"));
}

document.addEventListener("DOMContentLoaded", async () => {
  const me = await requireUser();
  desk.me = me;
  topbar(me);
  linkState("connecting");
  $("#wrap-save").addEventListener("click", () => saveWrap(false));
  $("#wrap-ready").addEventListener("click", () => saveWrap(true));
  $("#dial-form").addEventListener("submit", dial);
  $("#search-form").addEventListener("submit", search);
  $("#kb-form").addEventListener("submit", searchArticles);
  document.addEventListener("keydown", keys);
  socket = new CtiSocket(onMessage);
  window.cosmoDesk = { desk, socket };  // for the browser tests and the curious
  socket.connect();
  render();
  loadTemplates(desk).then(() => render());
  setInterval(tick, 1000);
});
