// The clinician's side panel on the call page: who is waiting (admit, short message), who is
// in the call (send back), and invitations (a colleague's account or a guest link).

import { $ } from './dom.js';
import { bdi, t } from './i18n-client.js';
import { Arrivals, waitingDetails } from './waiting.js';
import { state } from './call-stage.js';

// The protocol's notice codes; "few_minutes" may carry a number of minutes.
const NOTICES = [['few_minutes', 5], ['few_minutes', 10], ['few_minutes', 0], ['running_late', 0],
  ['technical_problem', 0], ['please_wait', 0]];

export class ClinicianPanel {
  constructor(signal, autoAdmit, chime) {
    this.signal = signal;
    this.arrivals = new Arrivals(chime);
    this.autoAdmit = autoAdmit;
    this.entries = null;
    this.patientsInCall = [];
    $('invite-staff').addEventListener('submit', (event) => {
      event.preventDefault();
      const id = Number($('invite-colleague').value);
      if (id) this.signal.inviteStaff(id);
    });
    $('invite-guest').addEventListener('click', () => this.signal.inviteGuest());
    tabs(document.querySelector('#stage-call [role="tablist"]'));
  }

  waitingList(entries) {
    this.arrivals.update(entries, entries.length);
    this.entries = entries;
    if (this.autoAdmit && entries.length) {
      // Arrived here from the dashboard's "Admit": let the first waiting patient in once.
      this.autoAdmit = false;
      this.signal.admit(entries[0].peer_id);
    }
    this.render();
  }

  inCall(patients) {
    this.patientsInCall = patients;
    this.render();
  }

  // The patient typed the code word: a line on this screen, no sound, nothing to the patient.
  safetyAlert() {
    const el = $('safety-alert');
    el.textContent = t('code_word_alert');
    el.hidden = false;
  }

  offline() { $('waiting-list').dataset.offline = 'true'; }

  render() {
    const list = $('waiting-list');
    delete list.dataset.offline;
    list.replaceChildren();
    for (const e of this.entries || []) list.append(this.waitingItem(e));
    for (const p of this.patientsInCall) {
      const li = document.createElement('li');
      li.className = 'in-call';
      li.append(nameEl(p.name || t('patient')), text('span', ' · ' + t('in_call')));
      li.append(button(t('send_back'), 'send-back', () => this.signal.sendBack(p.peer_id)));
      list.append(li);
    }
    if (!list.children.length) list.append(text('li', t('nobody_waiting')));
  }

  waitingItem(e) {
    const li = document.createElement('li');
    li.className = 'waiting';
    li.dataset.peer = e.peer_id;
    // A patient whose connection dropped keeps their place for a while (protocol: `away`
    // with `place: "waiting"`): say so, and admit them once they are back.
    const away = e.state === 'away';
    li.dataset.state = away ? 'away' : 'waiting';
    // A guest waits only in a sensitive consultation: admitted like the patient.
    const guest = e.role === 'guest';
    li.dataset.role = guest ? 'guest' : 'patient';
    li.append(nameEl(e.name || t(guest ? 'guest' : 'patient')), text('span', ' · ' + waitingDetails(e)));
    const admit = button(t('admit'), 'primary admit', () => this.signal.admit(e.peer_id));
    admit.disabled = away;
    li.append(admit);
    if (guest) return li;
    const ask = button(t('safe_ask'), 'safe-ask', () => this.signal.safeAsk(e.peer_id));
    ask.disabled = away;
    li.append(ask);
    const select = document.createElement('select');
    for (const [code, minutes] of NOTICES) {
      const option = document.createElement('option');
      option.value = minutes ? `${code}:${minutes}` : code;
      option.textContent = minutes ? t('notice_few_minutes_n', { minutes }) : t('notice_' + code);
      select.append(option);
    }
    select.setAttribute('aria-label', t('message_to_patient'));
    li.append(select, button(t('send_notice'), 'notice', () => {
      const [code, minutes] = select.value.split(':');
      if (this.signal.notice(e.peer_id, code, minutes ? Number(minutes) : null)) {
        $('invite-result').textContent = t('notice_sent');
      }
    }));
    return li;
  }

  invited(msg) {
    const out = $('invite-result');
    out.replaceChildren();
    if (msg.link) {
      out.append(text('span', t('invite_link') + ' '));
      const input = document.createElement('input');
      input.readOnly = true;
      input.value = location.origin + msg.link;
      input.addEventListener('focus', () => input.select());
      out.append(input);
      if (msg.guest_id) {
        const revoke = button(t('revoke_guest'), 'revoke-guest', () => {
          if (!this.signal.revokeGuest(msg.guest_id)) return;
          out.replaceChildren(text('span', t('guest_revoked')));
        });
        out.append(revoke);
      }
    } else {
      out.textContent = t('invited_staff');
    }
  }
}

// A person's name: <strong><bdi>, so its direction never reorders the details after it.
function nameEl(value) {
  const el = document.createElement('strong');
  el.append(bdi(value));
  return el;
}

function text(tag, value) {
  const el = document.createElement(tag);
  el.textContent = value;
  return el;
}

function button(label, cls, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

// The clinician's page loads this module before call.js, which makes the panel when it connects.
state.makePanel = (signal, autoAdmit, chime) => new ClinicianPanel(signal, autoAdmit, chime);

// The side column's tabs (WAI-ARIA tabs pattern, selection follows focus): one Tab stop for
// the row, the arrows move along it (mirrored right to left), Home and End go to either end.
function tabs(list) {
  const all = [...list.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const other of all) {
      const on = other === tab;
      other.setAttribute('aria-selected', String(on));
      other.tabIndex = on ? 0 : -1;
      $(other.getAttribute('aria-controls')).hidden = !on;
    }
  };
  for (const tab of all) tab.addEventListener('click', () => select(tab));
  list.addEventListener('keydown', (event) => {
    const at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const step = getComputedStyle(list).direction === 'rtl' ? -1 : 1;
    const to = { ArrowRight: at + step, ArrowLeft: at - step, Home: 0, End: all.length - 1 }[event.key];
    if (to === undefined) return;
    event.preventDefault();
    const tab = all[(to + all.length) % all.length];
    select(tab);
    tab.focus();
  });
}
