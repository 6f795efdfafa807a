// The patient's readings form (server/monitoring/patient.py). Each measurement written is one
// entry of an outbox kept in localStorage until the server has stored it: typed without a
// connection, it waits on the phone and is sent when the phone is back online (or the page is
// opened again); once the server answers, the entry is removed, whatever the answer. Nothing
// typed stays on the phone after it was sent.
import { $, csrfToken } from './dom.js';
import { t, intlLocale } from './i18n-client.js';
import { bluetoothAvailable, readFromDevice } from './ble-reader.js';

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
    out.push(set.dataset.fromDevice ? { measurement, values, from_device: true }
      : { measurement, values });
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
  for (const set of form.querySelectorAll('fieldset')) delete set.dataset.fromDevice;
  say(t('sending'), false);
  flush();
});

window.addEventListener('online', flush);
keep(outbox());
flush();

// Reading from a Bluetooth device: each measurement a device can give has its button, shown
// where the browser has Web Bluetooth. The reading fills the fields and is never sent by
// itself: the patient checks the numbers and presses Send.
const KPA_TO_MMHG = 7.50062;
const OLD_READING_MS = 24 * 3600 * 1000;
const tenths = (v) => Math.round(v * 10) / 10;

// The form's fields a device's reading (gatt.js) fills; a pulse goes into the heart-rate
// field when the plan has one. The plan's units: mmHg, %, kg, mg/dL.
const DEVICE_FIELDS = {
  blood_pressure: ({ values: v, unit }) => {
    const k = unit === 'kPa' ? KPA_TO_MMHG : 1;
    return { systolic: Math.round(v.systolic * k), diastolic: Math.round(v.diastolic * k),
      heart_rate: v.pulse };
  },
  spo2: ({ values: v }) => ({ spo2: Math.round(v.spo2), heart_rate: v.pulse }),
  weight: ({ values: v }) => ({ weight: tenths(v.weightKg) }),
  glucose: ({ values: v }) => ({ glucose: Math.round(v.mgDl) }),
};

function fillFromDevice(reading) {
  let first = null;
  for (const [name, value] of Object.entries(DEVICE_FIELDS[reading.kind](reading))) {
    const input = form.querySelector(`input[name="${CSS.escape(name)}"]`);
    if (!input || value === null || value === undefined || !Number.isFinite(value)) continue;
    input.value = String(name === 'heart_rate' ? Math.round(value) : value);
    fieldError(input, '');
    input.closest('fieldset').dataset.fromDevice = '1';
    first = first || input;
  }
  // The device's clock has no zone: read as the phone's own time. An old reading (a monitor
  // may send what it stored) is named, so that it is not sent as today's unknowingly.
  const at = reading.at ? new Date(reading.at) : null;
  const old = at && Date.now() - at.getTime() > OLD_READING_MS;
  const when = old && at.toLocaleString(intlLocale(), {
    weekday: 'long', day: 'numeric', month: 'long', hour: 'numeric', minute: '2-digit',
    year: at.getFullYear() === new Date().getFullYear() ? undefined : 'numeric' });
  say(old ? `${t('device_old', { when })} ${t('device_check')}` : t('device_check'), false);
  first?.focus();
}

export function offerDevice({ bluetoothAvailable: available, readFromDevice: read }) {
  if (!available()) return;
  for (const button of form.querySelectorAll('button[data-device]')) {
    button.hidden = false;
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        fillFromDevice(await read(button.dataset.device));
      } catch (err) {
        // The patient closed the chooser: her choice, nothing to say.
        if (err.name !== 'NotFoundError') say(t('device_failed'), false);
      } finally {
        button.disabled = false;
      }
    });
  }
}

// A value typed over one the device gave is the patient's own: the reading is then "home".
form.addEventListener('input', (event) => {
  const set = event.target.closest('fieldset');
  if (set) delete set.dataset.fromDevice;
});
offerDevice({ bluetoothAvailable, readFromDevice });
