// "Read aloud": a patient who reads with difficulty hears the page's main instruction, spoken by
// the browser's own speech synthesis in the page's language. Nothing leaves the device. Each
// button (web/templates/_read_aloud.html) names the ids of what it reads; it stays hidden unless
// the browser has a voice for the language: a button that cannot speak, or speaks Italian to an
// Arabic reader, is worse than none.

import { intlLocale } from './i18n-client.js';

function speech() {
  return 'speechSynthesis' in window && 'SpeechSynthesisUtterance' in window
    ? window.speechSynthesis : null;
}

// A voice whose language is the page's (its primary subtag: "fil-PH" for Filipino, "zh-CN").
export function voiceFor(voices, lang) {
  const wanted = intlLocale(lang).toLowerCase().split('-')[0];
  const matching = voices.filter((v) => v.lang.toLowerCase().replace('_', '-').split('-')[0] === wanted);
  return matching.find((v) => v.localService) || matching[0] || null;
}

function textOf(button) {
  return button.dataset.readAloud.split(/\s+/)
    .map((id) => document.getElementById(id))
    .filter((el) => el && !el.hidden && el.offsetParent !== null)
    .map((el) => el.innerText.trim())
    .filter(Boolean)
    .join('. ');
}

export function setUpReadAloud(root = document) {
  const synth = speech();
  const buttons = [...root.querySelectorAll('button[data-read-aloud]')];
  if (!synth || buttons.length === 0) return;
  const lang = document.documentElement.lang;
  let voice = null;
  let speaking = null;

  const label = (button, on) => {
    const word = button.querySelector('span');
    if (!button.dataset.labelRead) button.dataset.labelRead = word.textContent;
    word.textContent = on ? button.dataset.labelStop : button.dataset.labelRead;
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
  };
  const stop = () => {
    synth.cancel();
    if (speaking) label(speaking, false);
    speaking = null;
  };
  const refresh = () => {
    voice = voiceFor(synth.getVoices(), lang);
    for (const b of buttons) b.hidden = voice === null;
    if (voice === null) stop();
  };

  for (const button of buttons) {
    button.addEventListener('click', () => {
      const was = speaking;
      stop();
      if (was === button || voice === null) return;
      const utterance = new SpeechSynthesisUtterance(textOf(button));
      utterance.voice = voice;
      utterance.lang = voice.lang;
      utterance.rate = 0.9;
      utterance.addEventListener('end', () => { if (speaking === button) stop(); });
      utterance.addEventListener('error', () => { if (speaking === button) stop(); });
      speaking = button;
      label(button, true);
      synth.speak(utterance);
    });
  }
  synth.addEventListener('voiceschanged', refresh);
  // Leaving the page (or its stage) never leaves a voice talking over the next one.
  window.addEventListener('pagehide', stop);
  refresh();
}

setUpReadAloud();
