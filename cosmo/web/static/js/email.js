// The desktop's e-mail panel: the message offered or in hand, its case's earlier messages,
// and the reply editor (templates, knowledge-base answers), through /ui/ (docs/CTI.md).
// Mail content is untrusted: it is only ever set as text (h() and textContent), never as HTML.

import { $, api, dateTime, h, replace, words } from "./common.js";

/** The reply templates, once ([{name, text}]; none when the server has no e-mail channel). */
export async function loadTemplates(desk) {
  try {
    desk.templates = (await api("GET", "/ui/email/templates")).templates;
  } catch {
    desk.templates = [];
  }
}

function draftOf(desk, itemId) {
  let draft = desk.drafts.get(itemId);
  if (!draft) { draft = { body: "", template: "" }; desk.drafts.set(itemId, draft); }
  return draft;
}

async function load(desk, itemId, hooks) {
  const entry = { loading: true, data: null, error: null };
  desk.mail.set(itemId, entry);
  try {
    entry.data = await api("GET", `/ui/items/${encodeURIComponent(itemId)}/email`);
  } catch (error) {
    entry.error = error.message;
  }
  entry.loading = false;
  if (desk.mail.get(itemId) === entry) hooks.render();
}

/** Show the e-mail of the interaction in focus (hidden for anything else). */
export function renderMail(desk, current, hooks) {
  const card = $("#mail-card");
  const { kind, context } = current;
  if ((kind !== "offer" && kind !== "connected") || !context || context.channel !== "email") {
    card.hidden = true;
    card.dataset.key = "";
    replace(card);
    return;
  }
  card.hidden = false;
  const itemId = context.item_id;
  const entry = desk.mail.get(itemId);
  if (!entry) { load(desk, itemId, hooks); }
  const state = !entry || entry.loading ? "loading" : entry.error ? "error" : "ready";
  // Rebuilt only when what it shows changes: the editor keeps its text, caret and focus meanwhile.
  const key = `${itemId}|${kind}|${state}|${desk.templates.length}`;
  if (card.dataset.key === key) return;
  card.dataset.key = key;
  if (state === "loading") { replace(card, h("div.empty", "Opening the e-mail…")); return; }
  if (state === "error") { replace(card, h("div.empty", `The e-mail cannot be shown: ${entry.error}`)); return; }
  const mail = entry.data;
  replace(card,
    h("header",
      h("h2", "E-mail"),
      mail.case ? h("span.count", { id: "mail-case" }, `case #${mail.case.id}`) : null,
      h("span.grow"),
      mail.case ? h("span.muted", `${words(mail.case.status)} · queue ${mail.case.queue}`) : null),
    message(mail),
    thread(mail),
    kind === "connected" ? editor(desk, itemId, mail, hooks) : h("div.mail-hint", "Accept the e-mail to answer it."));
}

function address(name, addr) {
  if (!addr) return name || "–";
  return name && name !== addr ? `${name} <${addr}>` : addr;
}

function attachmentList(mail) {
  const attachments = mail.attachments || [];
  if (!attachments.length) return null;
  return h("div.attachments", { id: "mail-attachments" },
    attachments.map((a) => h("a.attachment", { href: a.url, download: a.filename || "attachment", rel: "noopener" },
      h("span.clip", "↓"), h("span", a.filename || "attachment"), h("small", size(a.size)))));
}

function size(bytes) {
  if (typeof bytes !== "number") return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

function message(mail) {
  const problems = mail.problems || [];
  return h("div.mail-message",
    h("h1.mail-subject", { id: "mail-subject" }, mail.subject || "(no subject)"),
    h("dl.kv.mail-meta",
      h("dt", "From"), h("dd", { id: "mail-from" }, address(mail.from_name, mail.from)),
      h("dt", "To"), h("dd", (mail.to || []).join(", ") || "–"),
      mail.cc && mail.cc.length ? [h("dt", "Cc"), h("dd", mail.cc.join(", "))] : null,
      h("dt", "Date"), h("dd", { id: "mail-date" }, dateTime(mail.date || mail.received_at))),
    attachmentList(mail),
    problems.length ? h("div.chips.problems", problems.map((p) => h("span.chip.warn", p))) : null,
    h("div.mail-text", { id: "mail-text" }, mail.text || ""));
}

function thread(mail) {
  const earlier = ((mail.case && mail.case.messages) || []).filter((m) => m.id !== mail.id);
  if (!earlier.length) return null;
  return h("details.thread", { id: "mail-thread" },
    h("summary", `Earlier in this case `, h("span.count", String(earlier.length))),
    earlier.map((m) => h(`div.thread-message.${m.direction}`,
      h("div.row",
        h(`span.badge.${m.direction === "in" ? "email" : "out"}`, m.direction === "in" ? "customer" : m.kind === "ack" ? "auto-reply" : "reply"),
        h("b", address(m.from_name, m.from)),
        m.direction === "out" && m.agent ? h("span.muted", `agent ${m.agent}`) : null,
        h("span.grow"),
        m.direction === "out" && m.status !== "sent" ? h("span.muted", words(m.status)) : null,
        h("span.muted", dateTime(m.date || m.sent_at || m.received_at))),
      h("div.thread-text", m.text || ""))));
}

function editor(desk, itemId, mail, hooks) {
  const draft = draftOf(desk, itemId);
  const picker = h("select", { id: "reply-template", "aria-label": "Template" },
    h("option", { value: "" }, "No template"),
    desk.templates.map((t) => h("option", { value: t.name }, words(t.name))));
  picker.value = draft.template;
  const preview = h("div.template-preview", { id: "template-preview" });
  const showPreview = () => {
    const template = desk.templates.find((t) => t.name === draft.template);
    preview.hidden = !template;
    if (template) replace(preview, h("span.hint", "Sent as"), h("div", template.text));
  };
  picker.addEventListener("change", () => { draft.template = picker.value; showPreview(); });
  showPreview();
  const body = h("textarea", { id: "reply-body", rows: 8, placeholder: "Write your reply… (the signature is added)",
    "aria-label": "Reply" });
  body.value = draft.body;
  body.addEventListener("input", () => { draft.body = body.value; });
  body.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); event.stopPropagation(); send(desk, itemId, mail, false, hooks); }
  });
  const to = address(mail.from_name, mail.from);
  return h("div.reply", { id: "reply" },
    h("div.row",
      h("span.reply-to", "Reply to ", h("b", to)), h("span.grow"),
      h("label.inline", "Template", picker)),
    body,
    preview,
    h("div.row",
      h("span.hint", "Insert answers from the articles · ", h("kbd", "Ctrl"), "+", h("kbd", "↵"), " send"),
      h("span.grow"),
      h("button", { id: "reply-send-close", type: "button", onclick: () => send(desk, itemId, mail, true, hooks) }, "Send & close case"),
      h("button.primary", { id: "reply-send", type: "button", onclick: () => send(desk, itemId, mail, false, hooks) }, "Send reply")));
}

async function send(desk, itemId, mail, close, hooks) {
  const draft = draftOf(desk, itemId);
  if (!draft.body.trim() && !draft.template) { hooks.toast("Write a reply or pick a template", "bad"); return; }
  const buttons = [$("#reply-send"), $("#reply-send-close")].filter(Boolean);
  for (const b of buttons) b.disabled = true;
  try {
    // "Send & close": the reply keeps the e-mail in hand, then the case closes (its item ends).
    await api("POST", `/ui/cases/${mail.case.id}/reply`, { body: draft.body, template: draft.template || null, done: !close });
    if (close) await api("POST", `/ui/cases/${mail.case.id}/close`);
    desk.drafts.delete(itemId);
    hooks.toast(close ? "Reply sent · case closed" : "Reply sent", "ok");
  } catch (error) {
    hooks.toast(error.message, "bad");
    for (const b of buttons) b.disabled = false;
  }
}

/** The e-mail's controls in the interaction card: transfer to a queue, close the case. */
export function mailActions(desk, context, hooks) {
  const entry = desk.mail.get(context.item_id);
  const mail = entry && entry.data;
  const queues = desk.queues.map((q) => q.name).filter((name) => name !== context.queue);
  const target = h("select", { id: "mail-transfer-queue", "aria-label": "Queue" },
    queues.map((name) => h("option", { value: name }, name)));
  // The card is drawn again with every desk message: the queue picked stays picked.
  if (queues.includes(desk.transferQueue)) target.value = desk.transferQueue;
  target.addEventListener("change", () => { desk.transferQueue = target.value; });
  const ready = Boolean(mail && mail.case);
  const act = async (verb, body, done) => {
    if (!ready) return;
    try {
      await api("POST", `/ui/cases/${mail.case.id}/${verb}`, body);
      hooks.toast(done, "ok");
    } catch (error) { hooks.toast(error.message, "bad"); }
  };
  return [
    h("button.primary", { id: "reply-focus", disabled: !ready, onclick: () => { const box = $("#reply-body"); if (box) box.focus(); } },
      "Reply ", h("kbd", "E")),
    h("span.grow"),
    h("label.inline", "Transfer to", target),
    h("button", { id: "mail-transfer", disabled: !ready || !queues.length,
      onclick: () => act("transfer", { queue: target.value }, `Case sent to queue ${target.value}`) }, "Transfer"),
    h("button.danger", { id: "mail-close", disabled: !ready, onclick: () => act("close", undefined, "Case closed") },
      "Close case"),
  ];
}

/** Put an article's text into the reply at the caret (or at the end). */
export function insertIntoReply(desk, itemId, text) {
  const box = $("#reply-body");
  if (!box) return;
  const draft = draftOf(desk, itemId);
  const start = box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? box.value.length;
  const before = box.value.slice(0, start);
  const glue = before && !before.endsWith("\n") ? "\n\n" : "";
  box.setRangeText(`${glue}${text.trim()}\n`, start, end, "end");
  draft.body = box.value;
  box.focus();
}
