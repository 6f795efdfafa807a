// The call's chat: the panel's toggle, sending, and showing what arrives (never stored).

import { t, timeOf } from './i18n-client.js';
import { $, LANG, nameOf, state } from './call-state.js';

$('btn-chat').addEventListener('click', () => {
  const open = $('chat').hidden;
  $('chat').hidden = !open;
  $('btn-chat').setAttribute('aria-expanded', String(open));
  $('btn-chat').classList.remove('unread');
  if (open) $('chat-text').focus();
});

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('chat-text').value.trim();
  if (!text || !state.signal) return;
  if (state.signal.chat(text.slice(0, 2000))) $('chat-text').value = '';
});

function addChatLine(who, text, at) {
  const li = document.createElement('li');
  const b = document.createElement('strong');
  b.textContent = who + (at ? ` (${timeOf(at, LANG)})` : '') + ': ';
  li.append(b, document.createTextNode(text));
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

// A `chat` message from the server (ours too, echoed back).
export function chatIn(msg) {
  const mine = state.me && msg.from === state.me.peer_id;
  addChatLine(mine ? t('chat_you') : nameOf(state.peers.get(msg.from), 'clinician'), msg.text, msg.at);
  if ($('chat').hidden && !mine) $('btn-chat').classList.add('unread');
}
