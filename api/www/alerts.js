// api/www/alerts.js: the rules' dashboard alerts (docs/RULES.md §3, docs/DASHBOARD.md).
//
//   stream `event: alert` {rule_id, rule, text, session_id, visitor_id, url, at, sound, notify}
//     ──► a toast (rule name, text, the visitor's page, "Show visitor" → details),
//         gone after TOAST_MS, at most MAX_TOASTS (the oldest goes first)
//     ──► a beep when the rule asks (`sound`) and this browser allows it (Rules view: Alerts: sound)
//     ──► a browser notification when the rule asks (`notify`), this browser allows it, and
//         the tab is in the background
//
// The rule's name and text come from agents, the URL from a visitor: text nodes only.
import { h, $ } from './app.js';
import { beep } from './chat.js';
import { openDetails } from './details.js';

const TOAST_MS = 8000;
const MAX_TOASTS = 4;
const SOUND_KEY = 'herenow.alert.sound';
const NOTIFY_KEY = 'herenow.alert.notify';
const SEEN_MS = 60000;            // the same firing twice (a reconnect): shown once

const seen = new Map();           // `${rule_id} ${session_id}` → when shown

export function alertEvent(a) {
  if (!a || typeof a !== 'object') return;
  const key = `${a.rule_id} ${a.session_id}`;
  const now = Date.now();
  for (const [k, t] of seen) if (now - t > SEEN_MS) seen.delete(k);
  if (seen.has(key)) return;
  seen.set(key, now);
  toast(a);
  if (a.sound && localStorage.getItem(SOUND_KEY) === '1') beep();
  if (a.notify && localStorage.getItem(NOTIFY_KEY) === '1' && 'Notification' in window
      && Notification.permission === 'granted' && document.hidden) {
    const n = new Notification(`herenow: ${a.rule || 'rule'}`, { body: a.text || '', tag: `herenow-alert-${key}` });
    n.onclick = () => { window.focus(); if (a.session_id) openDetails(a.session_id); n.close(); };
  }
}

function toast(a) {
  const box = $('toasts');
  while (box.children.length >= MAX_TOASTS) box.firstElementChild.remove();
  const el = h('div', { class: 'toast', role: 'status', dataset: { rule: a.rule_id ?? '', sid: a.session_id || '' } },
    h('div', { class: 'toast-head' },
      h('strong', { class: 'toast-rule', dir: 'auto', text: a.rule || `rule ${a.rule_id}` }),
      h('button', { type: 'button', class: 'quiet toast-close', 'aria-label': 'Dismiss', text: '×', onclick: () => el.remove() })),
    a.text ? h('p', { class: 'toast-text', dir: 'auto', text: a.text }) : null,
    a.url ? h('span', { class: 'toast-url', title: a.url, text: a.url }) : null,
    a.session_id ? h('button', { type: 'button', class: 'link toast-open', text: 'Show visitor',
      onclick: () => { el.remove(); openDetails(a.session_id); } }) : null);
  box.append(el);
  // paused while the pointer is on it: a toast being read does not leave
  let timer = setTimeout(() => el.remove(), TOAST_MS);
  el.addEventListener('pointerenter', () => clearTimeout(timer));
  el.addEventListener('pointerleave', () => { timer = setTimeout(() => el.remove(), TOAST_MS / 2); });
}

export function resetAlerts() {
  seen.clear();
  const box = $('toasts');
  if (box) box.replaceChildren();
}

// The two checkboxes of the Rules view (remembered in this browser; off by default).
export function initAlertPrefs() {
  const sound = $('alert-sound'), notify = $('alert-notify');
  sound.checked = localStorage.getItem(SOUND_KEY) === '1';
  notify.checked = localStorage.getItem(NOTIFY_KEY) === '1';
  sound.addEventListener('change', () => localStorage.setItem(SOUND_KEY, sound.checked ? '1' : '0'));
  notify.addEventListener('change', async () => {
    if (notify.checked && 'Notification' in window && Notification.permission === 'default') await Notification.requestPermission();
    const ok = notify.checked && 'Notification' in window && Notification.permission === 'granted';
    notify.checked = ok;
    localStorage.setItem(NOTIFY_KEY, ok ? '1' : '0');
  });
}
