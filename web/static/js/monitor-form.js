// The patient's readings form (server/monitoring/patient.py). Each measurement written is one
// entry of an outbox kept in localStorage until the server has stored it: typed without a
// connection, it waits on the phone and is sent when the phone is back online (or the page is
// opened again); once the server answers, the entry is removed, whatever the answer. Nothing
// typed stays on the phone after it was sent.
import { $, csrfToken } from './dom.js';
import { t } from './i18n-client.js';

const OUTBOX = 'casa-monitor-outbox';
const form = $('m-form');
const status = $('m-status');
const pending = $('m-pending');
const problem = $('m-error');

function outbox() {
  try {
    return JSON.parse(localStorage.getItem(OUTBOX) || '[]');
  } catch {
    return [];
  }
}

function keep(entries) {
  if (entries.length) localStorage.setItem(OUTBOX, JSON.stringify(entries));
  else localStorage.removeItem(OUTBOX);
  pending.hidden = entries.length === 0;
}

function say(text, ok = true) {
  status.textContent = text;
  status.classList.toggle('ok', ok);
  status.hidden = false;
}

function fieldError(input, text) {
  const el = $(`e-${input.name}`);
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
  el.textContent = text || '';
  el.hidden = !text;
}

// The entries the form holds now, each checked against its plausible range; null if any
// field is wrong (the fields say which, the typed values stay).
function formEntries() {
  const out = [];
  let wrong = false;
  for (const set of form.querySelectorAll('fieldset[data-measurement]')) {
    const measurement = set.dataset.measurement;
    if (measurement === 'symptoms') {
      const text = set.querySelector('textarea').value.trim();
      if (text) out.push({ measurement, text });
      continue;
    }
    const inputs = [...set.querySelectorAll('input')];
    if (inputs.every((i) => !i.value.trim())) {
      inputs.forEach((i) => fieldError(i, ''));
      continue;
    }
    const values = {};
    for (const input of inputs) {
      const value = Number(input.value.trim().replace(',', '.'));
      const low = Number(input.dataset.low);
      const high = Number(input.dataset.high);
      const ok = input.value.trim() !== '' && Number.isFinite(value) && value >= low && value <= high;
      fieldError(input, ok ? '' : t('range', { low, high }));
      wrong = wrong || !ok;
      values[input.name] = value;
    }
    out.push({ measurement, values });
  }
  return wrong ? null : out;
}

function sendOne(entry) {
  return fetch('/m/reading', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrfToken(),
    },
    body: JSON.stringify(entry),
  });
}

// A refused entry goes back into its fields, so the patient corrects it rather than typing it
// again (the server's refusal is rare: the form checks the ranges first).
function restore(entry) {
  if (!entry) return;
  for (const [name, value] of Object.entries(entry.values || {})) {
    const input = form.querySelector(`input[name="${CSS.escape(name)}"]`);
    if (input) input.value = String(value);
  }
  if (entry.text) form.querySelector('textarea[name="symptoms"]').value = entry.text;
}

let flushing = false;

// Send what waits, oldest first. A network failure keeps the rest for later; any answer of
// the server removes its entry (stored, or refused for good: it would be refused again).
async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    let waiting = outbox();
    while (waiting.length) {
      const entry = waiting[0];
      let resp;
      try {
        resp = await sendOne(entry);
      } catch {
        say(t('kept'), false);
        return;
      }
      if (resp.status === 403) {
        // Refused before it was looked at (the form's token, say): not stored, so kept for
        // the next try, when the page is opened again.
        say(t('kept'), false);
        return;
      }
      waiting = outbox().filter((e) => e.client_ref !== entry.client_ref);
      keep(waiting);
      if (resp.status === 401) {
        keep([]);
        say(t('ended'), false);
        return;
      }
      if (!resp.ok) {
        restore(entry);
        const body = await resp.json().catch(() => ({}));
        const fields = body.error?.details?.fields || {};
        // The server's reasons are for developers; the patient reads the range in her words.
        for (const name of Object.keys(fields)) {
          const input = form.querySelector(`input[name="${CSS.escape(name)}"]`);
          if (input) fieldError(input, t('range', { low: Number(input.dataset.low), high: Number(input.dataset.high) }));
        }
        problem.hidden = false;
        problem.focus();
        return;
      }
      say(t('sent'));
    }
  } finally {
    flushing = false;
  }
}

form.noValidate = true; // the script's own messages, in the patient's language
form.addEventListener('submit', (event) => {
  event.preventDefault();
  problem.hidden = true;
  const found = formEntries();
  if (found === null) {
    problem.hidden = false;
    problem.focus();
    return;
  }
  if (!found.length) {
    say(t('empty'), false);
    return;
  }
  const now = new Date().toISOString();
  keep([...outbox(), ...found.map((e) => ({ ...e, measured_at: now, client_ref: crypto.randomUUID() }))]);
  form.reset();
  say(t('sending'), false);
  flush();
});

window.addEventListener('online', flush);
keep(outbox());
flush();

// Reading from a Bluetooth device. Once ble-reader.js is in web/static/js, the hook is one
// line: import * as reader from './ble-reader.js' at the top and offerDevice(reader) here.
// offerDevice shows #m-device if the browser has Bluetooth and fills the fields it reads.
// DEVICE-HOOK: offerDevice(reader);
export function offerDevice(reader) {
  const button = $('m-device');
  if (!reader.bluetoothAvailable()) return;
  button.hidden = false;
  button.addEventListener('click', async () => {
    const kind = form.querySelector('fieldset[data-measurement]')?.dataset.measurement;
    const got = await reader.readFromDevice(kind);
    for (const [name, value] of Object.entries(got.values)) {
      const input = form.querySelector(`input[name="${CSS.escape(name)}"]`);
      if (input) input.value = String(value); // the patient checks, then presses Send
    }
  });
}
