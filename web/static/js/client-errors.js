// Errors nobody caught, and those a page catches but cannot explain to the person, reported to
// the server (POST /api/v1/client-errors) so that operators see them in /metrics.
//
// Imported first by every page's entry module, so it listens before the others run. A report
// holds no personal data: the page kind (<body data-page>, a fixed list), the error's name, its
// message cut short with quoted values, addresses, digits and long words removed, and the
// script's file name and line, never its address (the query of a page can hold a token). The
// server scrubs again (server/client_errors.py) and limits reports per client.

import { csrfToken } from './dom.js';

const ENDPOINT = '/api/v1/client-errors';
const MESSAGE_MAX = 160;
// A page stuck in a loop reports its first few errors only.
const MAX_REPORTS = 5;
let sent = 0;

export function scrub(message) {
  return String(message).slice(0, MESSAGE_MAX * 4)
    .replace(/(["'`«“‘]).*?(["'`»”’]|$)/gu, '…')
    .replace(/\S*(?::\/\/|[/?=@&#\\%])\S*/gu, '…')
    .replace(/[\p{L}\p{N}_]{16,}/gu, '…')
    .replace(/\d+/gu, '#')
    .replace(/\s+/gu, ' ')
    .trim()
    .slice(0, MESSAGE_MAX);
}

// "https://host/static/js/call.js?v=..." -> "call.js".
function fileName(url) {
  const match = /([\w.-]+\.js)(?:[?#][^\s:]*)?$/.exec(String(url || ''));
  return match ? match[1] : '';
}

// Where an error was thrown, from its stack's first frame that names a script of ours.
function origin(error) {
  const stack = error && typeof error.stack === 'string' ? error.stack : '';
  const match = /\/([\w.-]+\.js)(?:\?[^\s:)]*)?:(\d+):\d+/.exec(stack);
  return match ? { file: match[1], line: Number(match[2]) } : { file: '', line: 0 };
}

// Reports `error` (an Error, a DOMException, or whatever was thrown or rejected).
export function reportError(error, where = {}) {
  if (sent >= MAX_REPORTS) return;
  sent += 1;
  const isError = error !== null && typeof error === 'object';
  const name = isError && typeof error.name === 'string' ? error.name : 'unknown';
  const message = isError && typeof error.message === 'string' ? error.message : '';
  const found = where.file ? { file: fileName(where.file), line: where.line || 0 } : origin(error);
  const body = { page: document.body.dataset.page || 'other', name, message: scrub(message),
    file: found.file, line: Number.isInteger(found.line) ? found.line : 0 };
  fetch(ENDPOINT, {
    method: 'POST', credentials: 'same-origin', keepalive: true,
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify(body),
  // The report itself could not be sent (offline, server away): reporting that would only fail
  // the same way, and the person can do nothing about it.
  // eslint-disable-next-line no-restricted-syntax -- the one error with nowhere to go
  }).catch(() => {});
}

window.addEventListener('error', (event) => {
  reportError(event.error ?? { name: 'unknown', message: event.message },
    { file: event.filename, line: event.lineno });
});
window.addEventListener('unhandledrejection', (event) => reportError(event.reason));
