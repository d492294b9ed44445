// format.js: numbers, times, URLs and devices as the dashboard shows them (text only:
// elements are built with app.js's h(), strings become text nodes).
import { h } from './app.js';


const intFmt = new Intl.NumberFormat('en');
const fmtInt = n => (n == null ? '–' : intFmt.format(n));
const fmtPct = r => (r == null ? '–' : `${(r * 100).toFixed(1)}%`);

// A regional-indicator flag for an ISO 3166 alpha-2 code ("DE" → 🇩🇪); '' otherwise.
function flag(cc) {
  if (!/^[A-Z]{2}$/.test(cc || '')) return '';
  return String.fromCodePoint(...[...cc].map(c => 0x1f1e6 + c.charCodeAt(0) - 65));
}

// Ticking clock: 0:42, 12:05, 1:02:03.
function fmtClock(sec) {
  sec = Math.max(0, Math.floor(sec));
  const h2 = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s2 = sec % 60;
  const mm = h2 ? String(m).padStart(2, '0') : String(m);
  return `${h2 ? `${h2}:` : ''}${mm}:${String(s2).padStart(2, '0')}`;
}

// An average duration: 23 s, 4 min 5 s, 1 h 2 min.
function fmtDuration(sec) {
  if (sec == null) return '–';
  sec = Math.round(sec);
  if (sec < 60) return `${sec} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ${sec % 60} s`;
  return `${Math.floor(sec / 3600)} h ${Math.floor(sec / 60) % 60} min`;
}

function fmtAgo(ms) {
  const sec = Math.max(0, Math.round(ms / 1000));
  if (sec < 5) return 'now';
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  return `${Math.floor(sec / 3600)} h ago`;
}

// Local time, 24-hour clock (compact in the timeline and the chart).
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium', hourCycle: 'h23' });
const hourFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

function timeEl(iso, fmt = timeFmt) {
  if (!iso) return h('span', { class: 'muted', text: '–' });
  const d = new Date(iso);
  return h('time', { datetime: iso, title: d.toISOString(), text: fmt.format(d) });
}

function hostOf(url) {
  try { return new URL(url).host; } catch { return url || ''; }
}

// A link only for http(s): a visitor could send any scheme (javascript:, data:).
function urlEl(url, cls = 'url') {
  if (!url) return h('span', { class: 'muted', text: '–' });
  if (/^https?:\/\//i.test(url)) {
    return h('a', { class: cls, href: url, target: '_blank', rel: 'noopener noreferrer', text: url });
  }
  return h('span', { class: cls, text: url });
}

function deviceText(v) {
  const parts = [
    [v.browser, v.browser_version && v.browser_version.split('.')[0]].filter(Boolean).join(' '),
    [v.os, v.os_version].filter(Boolean).join(' '),
    v.device,
  ].filter(Boolean);
  return parts.length ? parts.join(' · ') : '–';
}

export { intFmt, fmtInt, fmtPct, flag, fmtClock, fmtDuration, fmtAgo, timeFmt, dateTimeFmt, hourFmt, dayFmt, timeEl, hostOf, urlEl, deviceText };
