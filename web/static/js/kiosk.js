// The kiosk's way in (/kiosk): the language, "I have an appointment", the 6-digit code on an
// on-screen keypad or the invitation's QR code shown to the camera, then the date of birth on
// the keypad. Each step is shown in place (no navigation, so no history entry), and what is
// typed lives only in this module: no form field for the browser to remember or autofill.
import './client-errors.js';
import { $, csrfToken } from './dom.js';
import { loadStrings, t } from './i18n-client.js';

loadStrings();
const root = $('kiosk');
const LENGTH = { code: 6, dob: 8 };
const typed = { code: '', dob: '' };
// The invitation link read from a QR code, instead of the code.
let link = null;

function show(step) {
  for (const section of root.querySelectorAll('.k-step')) section.hidden = section.id !== step;
  const heading = $(step).querySelector('h1');
  heading.tabIndex = -1;
  heading.focus();
}

function say(message) {
  const box = $('k-error');
  box.textContent = message;
  box.hidden = !message;
  $('k-restart').hidden = !message;
}

// The code as six boxes; the date of birth as DD / MM / YYYY, filled as it is typed.
function render() {
  $('k-code-value').textContent = typed.code.padEnd(LENGTH.code, '·').replace(/(.{3})/, '$1 ');
  const d = typed.dob.padEnd(LENGTH.dob, '·');
  $('k-dob-value').textContent = `${d.slice(0, 2)} / ${d.slice(2, 4)} / ${d.slice(4)}`;
  for (const pad of root.querySelectorAll('.keypad')) {
    const name = pad.dataset.keypad;
    pad.querySelector('[data-next]').disabled = typed[name].length !== LENGTH[name];
  }
}

function restart() {
  typed.code = '';
  typed.dob = '';
  link = null;
  say('');
  render();
  show('k-start');
}

async function join() {
  const dob = typed.dob;
  const body = { day: dob.slice(0, 2), month: dob.slice(2, 4), year: dob.slice(4) };
  if (link !== null) body.link = link;
  else body.code = typed.code;
  let answer;
  try {
    const response = await fetch('/kiosk/join', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
      body: JSON.stringify(body),
    });
    answer = await response.json();
  } catch (error) {
    answer = { message: t('failed') };
    console.warn('kiosk join failed', error.name);
  }
  if (answer.next) {
    typed.code = '';
    typed.dob = '';
    // Replaced, not pushed: Back never leads to this page with what was typed.
    location.replace(answer.next);
    return;
  }
  typed.dob = '';
  render();
  say(answer.message || t('failed'));
}

root.addEventListener('click', (event) => {
  const key = event.target.closest('button');
  if (key === null) return;
  const pad = key.closest('.keypad');
  if (pad !== null) {
    const name = pad.dataset.keypad;
    if (key.dataset.digit !== undefined && typed[name].length < LENGTH[name]) {
      typed[name] += key.dataset.digit;
    } else if (key.dataset.delete !== undefined) {
      typed[name] = typed[name].slice(0, -1);
    } else if (key.dataset.next !== undefined) {
      if (name === 'code') show('k-dob');
      else join();
    }
    render();
  } else if (key.dataset.lang) {
    chooseLanguage(key.dataset.lang);
  }
});

// The language goes in its cookie by the site's own form handler; the page is then opened
// again in that language in place of this one (no history entry per patient).
async function chooseLanguage(lang) {
  const form = new URLSearchParams({ csrf_token: csrfToken(), lang, next: '/kiosk' });
  try {
    await fetch('/language', { method: 'POST', body: form });
  } catch (error) {
    console.warn('language not saved', error.name);
  }
  location.replace('/kiosk');
}

$('k-have').addEventListener('click', () => {
  say('');
  show('k-code');
});
$('k-restart').addEventListener('click', restart);
$('k-scan').addEventListener('click', scan);
$('k-qr-cancel').addEventListener('click', () => {
  stopCamera();
  show('k-code');
});

// --- The invitation's QR code --------------------------------------------------------------

// What an invitation's QR code holds: its link, https://<server>/join/<token>.
const INVITATION = /\/join\/[A-Za-z0-9_-]+$/;
const SCAN_EVERY_MS = 200;
let camera = null;

function loadClassicScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error('QR decoder did not load'));
    document.head.append(script);
  });
}

// The browser's own BarcodeDetector where it reads QR codes (Android, ChromeOS, macOS);
// otherwise jsQR (web/static/vendor/jsqr), loaded only then, over a canvas.
async function decoder() {
  if ('BarcodeDetector' in window) {
    const formats = await window.BarcodeDetector.getSupportedFormats();
    if (formats.includes('qr_code')) {
      const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
      return async (source) => {
        const found = await detector.detect(source);
        return found.length ? found[0].rawValue : null;
      };
    }
  }
  await loadClassicScript(root.dataset.qrDecoder);
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  return async (source) => {
    const width = source.videoWidth || source.naturalWidth || source.width;
    const height = source.videoHeight || source.naturalHeight || source.height;
    if (!width || !height) return null;
    canvas.width = width;
    canvas.height = height;
    context.drawImage(source, 0, 0, width, height);
    const found = window.jsQR(context.getImageData(0, 0, width, height).data, width, height);
    return found ? found.data : null;
  };
}

function stopCamera() {
  if (camera !== null) for (const track of camera.getTracks()) track.stop();
  camera = null;
  $('k-video').srcObject = null;
}

async function scan() {
  say('');
  show('k-qr');
  const video = $('k-video');
  let decode;
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    video.srcObject = camera;
    await video.play();
    decode = await decoder();
  } catch (error) {
    stopCamera();
    console.warn('no camera for the QR code', error.name);
    show('k-code');
    say(t('no_camera'));
    return;
  }
  while (camera !== null) {
    const text = video.readyState >= 2 ? await decode(video) : null;
    if (text) {
      stopCamera();
      if (INVITATION.test(new URL(text, location.href).pathname)) {
        link = text;
        show('k-dob');
      } else {
        show('k-code');
        say(t('bad_qr'));
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, SCAN_EVERY_MS));
  }
}

// A kiosk page left alone is wiped by kiosk-guard.js (base.html loads it on every page of
// a kiosk); "Start again" after a refusal forgets what was typed, the language stays.
render();
