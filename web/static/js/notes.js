// The consultation note editor: autosaves drafts, signs, starts amendments.
// Mounts on every [data-notes-editor] (the consultation page and the call page). Talks to
// /api/v1/records/... with the page's CSRF token; its words come with the editor's HTML, in its
// data-strings block (i18n-client.js).

import './client-errors.js';
import { csrfToken } from './dom.js';
import { loadStrings, t } from './i18n-client.js';

const AUTOSAVE_IDLE_MS = 2000; // save after the clinician pauses typing this long
const TEXT_FIELDS = ["reason", "assessment", "plan", "text", "summary"];

// Answers that mean "not now" rather than "not this": the network, a proxy, or the database
// is down. The draft is kept on the page and sent again.
const RETRYABLE_STATUS = new Set([502, 503, 504]);
const RETRY_FIRST_MS = 2000;
const RETRY_MAX_MS = 30000;

async function call(method, url, body, { keepalive = false } = {}) {
  let resp;
  try {
    resp = await fetch(url, {
      method,
      credentials: "same-origin",
      keepalive,
      headers: { "Content-Type": "application/json", Accept: "application/json",
                 "X-CSRF-Token": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (cause) {
    const err = new Error(String(cause));
    err.retryable = true;
    err.details = {};
    throw err;
  }
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error((data.error && data.error.message) || String(resp.status));
    err.details = (data.error && data.error.details) || {};
    err.retryable = RETRYABLE_STATUS.has(resp.status);
    throw err;
  }
  return data;
}

function collect(form) {
  const content = { measurements: {} };
  for (const name of TEXT_FIELDS) content[name] = form.elements[name].value;
  for (const input of form.querySelectorAll("[data-measure]")) {
    const kind = input.dataset.measure;
    const value = input.value.trim();
    if (!value) continue;
    const select = form.querySelector(`[data-unit="${kind}"]`);
    const fixed = form.querySelector(`[data-unit-fixed="${kind}"]`);
    content.measurements[kind] = { value, unit: select ? select.value : fixed.dataset.value };
  }
  return content;
}

// ``refresh`` shows the new state after signing or amending: a page reload on the notes page,
// a re-fetch of the panel on the call page (a reload there would drop the call).
function mount(root, refresh = () => window.location.reload()) {
  const form = root.querySelector("[data-note-form]");
  const state = root.querySelector("[data-save-state]");
  const errorBox = root.querySelector("[data-save-error]");
  let noteId = root.dataset.noteId || null;
  let timer = null;
  let saving = Promise.resolve();
  // Edits made since the last successful save (input events counted, so an edit made while a
  // save is in flight is not marked saved by it).
  let edits = 0;
  let savedEdits = 0;
  let retryMs = RETRY_FIRST_MS;
  // A creation that failed "not now" may still have reached the server (the answer was lost):
  // before creating again, look for the draft it made, so a retry never makes a second note.
  let creationUncertain = false;
  let inFlight = false;

  async function adoptOwnDraft() {
    const list = await call("GET", `/api/v1/records/consultations/${root.dataset.bookingId}/notes`);
    // The same choice the server makes when it opens the editor: an editable, unsigned note.
    const mine = (list.notes || []).find((n) => n.can_edit && n.versions.length
      && n.versions[n.versions.length - 1].status !== "signed");
    if (mine) noteId = String(mine.id);
    creationUncertain = false;
  }

  function showError(err) {
    const details = Object.entries(err.details || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
    errorBox.textContent = details ? `${err.message} (${details})` : err.message;
    errorBox.hidden = false;
    state.textContent = t("note_error");
  }

  async function save({ keepalive = false } = {}) {
    clearTimeout(timer);
    timer = null;
    state.textContent = t("note_saving");
    const content = collect(form);
    const upTo = edits;
    inFlight = true;
    try {
      if (noteId === null && creationUncertain) await adoptOwnDraft();
      if (noteId === null) {
        creationUncertain = true;
        const made = await call("POST", `/api/v1/records/consultations/${root.dataset.bookingId}/notes`, {
          patient_id: Number(root.dataset.patientId), category: form.elements.category.value, content,
        }, { keepalive });
        noteId = String(made.id);
        creationUncertain = false;
        root.dataset.noteId = noteId;
        const category = form.elements.category;
        if (category) category.disabled = true;
      } else {
        await call("PUT", `/api/v1/records/notes/${noteId}/draft`, { content }, { keepalive });
      }
      savedEdits = Math.max(savedEdits, upTo);
      retryMs = RETRY_FIRST_MS;
      errorBox.hidden = true;
      state.textContent = edits > savedEdits ? t("note_unsaved") : t("note_saved");
      return true;
    } catch (err) {
      if (err.retryable) {
        // Nothing is lost: the text stays here and is sent again, a little later each time.
        errorBox.textContent = t("note_retrying");
        errorBox.hidden = false;
        state.textContent = t("note_error");
        clearTimeout(timer);
        timer = setTimeout(queueSave, retryMs);
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      } else {
        creationUncertain = false; // refused outright: nothing was created
        showError(err);
      }
      return false;
    } finally {
      inFlight = false;
    }
  }

  function queueSave() {
    // One save at a time, in order: a slow network must not reorder drafts.
    saving = saving.then(save);
    return saving;
  }

  if (form) {
    form.addEventListener("input", () => {
      edits += 1;
      state.textContent = t("note_unsaved");
      clearTimeout(timer);
      timer = setTimeout(queueSave, AUTOSAVE_IDLE_MS);
    });
    form.querySelector("[data-save]").addEventListener("click", queueSave);
    form.querySelector("[data-sign]").addEventListener("click", async () => {
      if (!window.confirm(t("note_confirm_sign"))) return;
      if (!(await queueSave())) return;
      try {
        await call("POST", `/api/v1/records/notes/${noteId}/sign`);
        state.textContent = t("note_signed");
        refresh();
      } catch (err) {
        showError(err);
      }
    });
  }

  for (const amend of root.querySelectorAll("[data-amend-form]")) {
    amend.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await call("POST", `/api/v1/records/notes/${amend.dataset.noteId}/amend`,
                   { reason: amend.elements.reason.value });
        refresh();
      } catch (err) {
        showError(err);
      }
    });
  }

  window.addEventListener("beforeunload", (event) => {
    if (edits <= savedEdits) return;
    // Ask the browser to warn: the text may not have reached the server yet. With no save in
    // flight, also try once more on the way out (keepalive lets the request outlive the page);
    // one queued behind a save in flight would start after the page is gone.
    if (!inFlight) saving = saving.then(() => save({ keepalive: true }));
    event.preventDefault();
    event.returnValue = "";
  });
}

// The call page has an empty notes panel that knows its consultation: fetch the editor
// (server-rendered, same origin) into it, with its stylesheet.
// A clinician from another centre may write only once the consultation is under way (the
// patient arrived, or its start time passed): until then the panel answers 403, so it is asked
// again a few times rather than left empty for the whole call.
const PANEL_RETRY_MS = 30000;
const PANEL_RETRIES = 20;

async function fillCallPanel(panel, retriesLeft = PANEL_RETRIES) {
  let resp = null;
  try {
    resp = await fetch(`/records/consultations/${panel.dataset.consultationId}/panel`, {
      credentials: "same-origin", headers: { Accept: "text/html" },
    });
  } catch {
    // The network dropped: like a server briefly away (no error of the page's to report).
  }
  const status = resp ? resp.status : 503;
  if (!resp || !resp.ok) {
    // Not (yet) someone who may write here, or the server briefly away: ask again later.
    if ((status === 403 || RETRYABLE_STATUS.has(status)) && retriesLeft > 0) {
      setTimeout(() => fillCallPanel(panel, retriesLeft - 1), PANEL_RETRY_MS);
    }
    return;
  }
  if (!document.querySelector('link[data-records-css]')) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = "/static/css/records.css";
    link.dataset.recordsCss = "";
    document.head.append(link);
  }
  const holder = document.createElement("div");
  holder.innerHTML = await resp.text();
  for (const old of panel.querySelectorAll("[data-notes-editor]")) old.remove();
  panel.append(...holder.childNodes);
  loadStrings(panel);
  for (const root of panel.querySelectorAll("[data-notes-editor]")) {
    mount(root, () => fillCallPanel(panel));
  }
}

for (const root of document.querySelectorAll("[data-notes-editor]")) mount(root);
for (const panel of document.querySelectorAll("#notes-panel[data-consultation-id]")) {
  fillCallPanel(panel);
}
