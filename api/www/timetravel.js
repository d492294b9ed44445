// api/www/timetravel.js: the live list's time picker (docs/DASHBOARD.md).
//
//   [Now] [5 min ago] [1 hour ago] [24 hours ago] [At: datetime-local]
//        │ a past instant
//        ▼
//   GET …/active-visitors?at=ISO (PostgreSQL, pages of 1000) ─► state.past.visitors
//
// While state.past is set, app.js renders the list from it (viewVisitors()),
// the stream goes on updating state.visitors underneath without touching the
// view, the list is marked as the past (a banner with the instant and its UTC
// offset, .is-past styles) and no row offers Start chat (chat.js). "Now"
// brings the live list back at once: it never stopped being kept.
import { api, state, $, wpath, showBanner, fmtInt, changed, resetRows, prepare, dayFmt } from './app.js';
import { renderPages } from './pages.js';

const MAX_PAGES = 10;                 // × 1000 sessions of the past at most
const MAX_AGO_MS = 400 * 86400e3;     // the API answers at most 400 days back
let gen = 0;

const clockFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });

// "UTC+05:30" (the browser's offset at that instant; "UTC" when it is 0).
export function utcOffset(ms) {
  const off = -new Date(ms).getTimezoneOffset();
  if (!off) return 'UTC';
  const a = Math.abs(off);
  return `UTC${off < 0 ? '−' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

// "14:32:05" today, "Dec 3, 14:32:05" another day; then the offset.
export function fmtInstant(ms) {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return `${today ? '' : `${dayFmt.format(d)}${d.getFullYear() !== new Date().getFullYear() ? ` ${d.getFullYear()}` : ''}, `}${clockFmt.format(d)} (${utcOffset(ms)})`;
}

// The value of a datetime-local input for an instant, in the browser's zone.
function localValue(ms) {
  const d = new Date(ms);
  const p = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// The count line of the past list (app.js's updateCount asks).
export function pastCountText() {
  const p = state.past;
  const when = fmtInstant(p.at);
  if (p.loading) return `Loading who was on the site at ${when}…`;
  const n = p.total;
  if (!n) return `No one was on the site at ${when}.`;
  const more = p.visitors.size < n ? ` (the newest ${fmtInt(p.visitors.size)} shown)` : '';
  return `${fmtInt(n)} ${n === 1 ? 'visitor was' : 'visitors were'} on the site at ${when} · ${fmtInt(p.active)} active · ${fmtInt(p.idle)} idle${more}`;
}

function showWhen(pressed) {
  const past = state.past;
  $('t-now').setAttribute('aria-pressed', String(!past));
  for (const b of document.querySelectorAll('#when [data-ago]')) b.setAttribute('aria-pressed', String(pressed === b.dataset.ago));
  $('live').classList.toggle('is-past', !!past);
  $('past').hidden = !past;
  if (past) {
    $('past-text').textContent = `${past.loading ? 'Loading' : 'Showing'} who was on the site at ${fmtInstant(past.at)} —`;
    $('t-at').value = localValue(past.at);
  } else $('t-at').value = '';
}

// goPast(ms, pressed): the list as it was at ms (pressed: the quick choice used).
export async function goPast(ms, pressed = null) {
  if (!state.widget || !Number.isFinite(ms)) return;
  const now = Date.now() + state.skew;
  if (ms > now) { showBanner('time travel: that instant is in the future'); return; }
  if (ms < now - MAX_AGO_MS) { showBanner('time travel: at most 400 days back'); return; }
  const my = ++gen, wgen = state.gen;
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString();
  state.past = { at: Date.parse(iso), iso, loading: true, visitors: new Map(), total: 0, active: 0, idle: 0 };
  resetRows();
  showWhen(pressed);
  renderPages();
  changed();
  try {
    let cursor = null, first = null;
    const visitors = new Map();
    for (let page = 0; page < MAX_PAGES; page++) {
      const q = `?at=${encodeURIComponent(iso)}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await api(wpath(`/active-visitors${q}`));
      if (my !== gen || wgen !== state.gen) return;
      first = first || r;
      for (const v of r.visitors || []) { v._past = true; visitors.set(v.session_id, prepare(v)); }
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    Object.assign(state.past, {
      loading: false, visitors, total: first.total ?? visitors.size,
      active: first.active_count ?? 0, idle: first.idle_count ?? 0,
    });
  } catch (e) {
    if (my !== gen || wgen !== state.gen) return;
    if (e.status !== 401 && e.status !== 403) showBanner(`time travel: ${e.message}`);
    goNow();
    return;
  }
  $('live').dataset.pastLoaded = iso;      // the browser test waits for this
  showWhen(pressed);
  renderPages();
  changed();
}

// Back to the live list (kept all along by the stream).
export function goNow(quiet = false) {
  gen++;
  const was = !!state.past;
  state.past = null;
  delete $('live').dataset.pastLoaded;
  showWhen(null);
  if (quiet || !was) return;
  resetRows();
  renderPages();
  changed();
}

export function initTime() {
  $('t-now').addEventListener('click', () => goNow());
  $('past-now').addEventListener('click', () => { goNow(); $('t-now').focus(); });
  for (const b of document.querySelectorAll('#when [data-ago]')) {
    b.addEventListener('click', () => goPast(Date.now() + state.skew - Number(b.dataset.ago) * 1000, b.dataset.ago));
  }
  const input = $('t-at');
  input.addEventListener('focus', () => {
    const now = Date.now() + state.skew;
    input.max = localValue(now);
    input.min = localValue(now - MAX_AGO_MS + 60e3);
  });
  input.addEventListener('change', () => {
    if (!input.value) { goNow(); return; }
    goPast(new Date(input.value).getTime());   // no offset in the value: the browser's local time
  });
  showWhen(null);
}
