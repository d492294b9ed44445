// api/www/app.js: the herenow dashboard (docs/DASHBOARD.md). One ES module, no
// framework, no build step; the api serves it with a strict CSP, so there is no
// inline script or style and no eval.
//
// How data moves:
//
//   sign-in ── GET /widgets ── widget picker
//                                 │
//   live:   POST …/stream/ticket → EventSource(…/stream?ticket=)  snapshot/enter/update/leave
//           (or, when that fails, GET …/active-visitors every 5 s)        │
//                                                                 state.visitors (Map)
//                                                                         │  scheduleRender()
//                                                      one requestAnimationFrame: filter, sort,
//                                                      reuse/refill at most 500 row elements
//   stats:  visitor-stats + timeseries + breakdown×5 for 24h/7d/30d; CSV export via fetch+Blob
//   details: GET /sessions/:sid?widget= in a <dialog> (details.js); statistics: stats.js; chat: chat.js
//   pages now: the stream's `pages` event (pages.js); time travel: active-visitors?at= (timetravel.js)
//   rules: the Rules view (rules.js); the stream's `alert` event → toasts (alerts.js);
//   notes, tags, bans: GET …/annotations merged into the rows and details (notes.js)
//
// Everything a visitor sent (titles, URLs, names, event props) is attacker-controlled:
// it only ever reaches the page through textContent / text nodes, never innerHTML.
// The token travels only in the Authorization header: never in a URL (the stream
// uses a short-lived single-use ticket instead). Start Chat lives in chat.js.

import { chatCell, chatUpdate, initChat, resetChat } from './chat.js';
import { loadStats, exportCsv, statsView } from './stats.js';
import { details, openDetails, closeDetails, detailsLiveChanged } from './details.js';
import { initPages, pagesEvent, resetPages } from './pages.js';
import { initTime, goNow, pastCountText } from './timetravel.js';
import { initRules, loadRules, resetRules } from './rules.js';
import { alertEvent, resetAlerts } from './alerts.js';
import { initNotes, loadAnnotations, resetNotes, annoChips, hasTag } from './notes.js';
export { h, put, s, api, state, $, wpath, showBanner, flag, fmtInt, fmtPct, fmtDuration,
  dateTimeFmt, hourFmt, dayFmt, serverNow, rows, remove, timeEl, urlEl, deviceText,
  changed, resetRows, prepare, viewVisitors, scheduleRender, showView };

const API = '/api/visitor-tracking';
const MAX_ROWS = 500;             // rows in the DOM at most: 10,000 live visitors stay smooth
const POLL_MS = 5000;             // polling period when SSE is unavailable
const POLL_PAGES = 10;            // × 1000 visitors per poll at most
const SSE_RETRY_MIN_MS = 5000;    // SSE retried now and then while polling
const SSE_RETRY_MAX_MS = 60000;
const TOKEN_KEY = 'herenow.token';
const WIDGET_KEY = 'herenow.widget';
const RANGE_KEY = 'herenow.range';

const $ = id => document.getElementById(id);

// ---- tiny DOM helpers (text only: strings become text nodes) ----------------------

function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  setProps(el, props);
  return kids.length ? put(el, ...kids) : el;
}

// put(el, ...kids): el's children become kids (null/false skipped: replaceChildren
// alone would print them as "null").
function put(el, ...kids) {
  el.replaceChildren(...kids.flat().filter(k => k != null && k !== false));
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, props, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  return kids.length ? put(el, ...kids) : el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));   // never 'style': CSP
  }
}

// ---- formatting: format.js
import { intFmt, fmtInt, fmtPct, flag, fmtClock, fmtDuration, fmtAgo, timeFmt, dateTimeFmt, hourFmt, dayFmt, timeEl, hostOf, urlEl, deviceText } from './format.js';

// ---- state -------------------------------------------------------------------------

const state = {
  token: null,
  widgets: [],
  widget: null,              // {id, name, …}
  view: 'live',
  gen: 0,                    // bumped on sign-out / widget switch: stale answers are dropped
  visitors: new Map(),       // session_id → visitor item (+ _seen, _started, _rev)
  total: 0,                  // live sessions of the widget (polling: the API's total)
  skew: 0,                   // server clock − our clock, ms (from the server's `now`)
  sort: { key: 'last_seen', dir: -1 },
  filter: { page: '', country: '', status: '', tag: '', pin: null },   // pin: {url} from Pages now
  past: null,                // time travel: {at, visitors, total, …} shown instead of the live list
  range: localStorage.getItem(RANGE_KEY) || '24h',
};

const serverNow = () => Date.now() + state.skew;
function setSkew(nowIso) {
  const t = Date.parse(nowIso);
  if (!Number.isNaN(t)) state.skew = t - Date.now();
}

// ---- API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// api(path, {method, raw}): JSON (or the Response when raw) of a route under
// /api/visitor-tracking with the token in the Authorization header. A 401
// anywhere signs out; a 403 says so in the banner. Throws ApiError.
async function api(path, { method = 'GET', raw = false, token = state.token, body } = {}) {
  const gen = state.gen;
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(API + path, { method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'the server cannot be reached');
  }
  if (r.ok) return raw ? r : r.json();
  let msg = `HTTP ${r.status}`;
  try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
  if (gen === state.gen && token === state.token) {
    if (r.status === 401) signOut('invalid or revoked token');
    // 403 banned: an invitation to a banned visitor (the caller says so), not the token
    else if (r.status === 403 && msg !== 'banned') showBanner('this token may not see that widget');
  }
  throw new ApiError(r.status, msg);
}

const wpath = (rest = '') => `/widgets/${state.widget.id}${rest}`;

// ---- banner ------------------------------------------------------------------------

function showBanner(text) {
  $('banner-text').textContent = text;
  $('banner').hidden = false;
}
function hideBanner() { $('banner').hidden = true; }

// ---- sign-in / sign-out ----------------------------------------------------------

function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
}

async function signIn(token, remember) {
  const errEl = $('signin-error');
  errEl.hidden = true;
  $('signin-btn').disabled = true;
  let widgets;
  try {
    widgets = (await api('/widgets', { token })).widgets;
  } catch (e) {
    $('signin-btn').disabled = false;
    if (e.status === 401) signOut('invalid or revoked token');
    else { errEl.textContent = e.message; errEl.hidden = false; showSignIn(); }
    return;
  }
  $('signin-btn').disabled = false;
  state.token = token;
  if (remember === true) { localStorage.setItem(TOKEN_KEY, token); sessionStorage.removeItem(TOKEN_KEY); }
  else if (remember === false) { sessionStorage.setItem(TOKEN_KEY, token); localStorage.removeItem(TOKEN_KEY); }
  $('token').value = '';
  state.widgets = widgets;
  showApp();
}

function signOut(message) {
  state.gen++;
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  stopLive();
  if ($('details').open) $('details').close();
  state.widgets = [];
  state.widget = null;
  goNow(true);
  clearVisitors();
  resetChat();
  resetPages();
  resetRules();
  resetAlerts();
  resetNotes();
  hideBanner();
  const errEl = $('signin-error');
  errEl.textContent = message || '';
  errEl.hidden = !message;
  showSignIn();
}

function showSignIn() {
  $('bar').hidden = true;
  $('live').hidden = true;
  $('stats').hidden = true;
  $('rules').hidden = true;
  $('signin').hidden = false;
  document.title = 'herenow — sign in';
  $('token').focus();
}

function showApp() {
  $('signin').hidden = true;
  $('bar').hidden = false;
  const sel = $('widget');
  put(sel, ...state.widgets.map(w =>
    h('option', { value: w.id, text: `${w.name} (${w.domain})` })));
  const ids = state.widgets.map(w => String(w.id));
  const fromHash = /^[1-9]\d{0,9}$/.test(hashParams().get('widget') || '') ? hashParams().get('widget') : null;
  const remembered = localStorage.getItem(WIDGET_KEY);
  // A widget named in the URL is tried even when not listed: the server decides (403).
  const id = fromHash || (ids.includes(remembered) ? remembered : ids[0]);
  if (!id) {
    showBanner('this token sees no widget (create one with herenowctl widget add)');
    showView(state.view);
    return;
  }
  if (!ids.includes(id)) sel.append(h('option', { value: id, text: `widget ${id}` }));
  sel.value = id;
  const v = hashParams().get('view');
  showView(v === 'stats' || v === 'rules' ? v : state.view, false);
  selectWidget(id);
}

function hashParams() { return new URLSearchParams(location.hash.slice(1)); }
function writeHash() {
  const p = new URLSearchParams();
  if (state.widget) p.set('widget', state.widget.id);
  if (state.view !== 'live') p.set('view', state.view);
  history.replaceState(null, '', `#${p}`);
}

function selectWidget(id) {
  state.gen++;
  stopLive();
  goNow(true);
  clearVisitors();
  resetChat();
  resetPages();
  resetRules();
  resetAlerts();
  resetNotes();
  hideBanner();
  if ($('details').open) $('details').close();
  state.widget = state.widgets.find(w => String(w.id) === String(id)) || { id: Number(id), name: `widget ${id}` };
  localStorage.setItem(WIDGET_KEY, String(state.widget.id));
  writeHash();
  updateCount();
  startLive();
  loadAnnotations();
  if (state.view === 'rules') loadRules();
  if (state.view === 'stats') loadStats();
  else statsView.dirty = true;
}

// ---- views -------------------------------------------------------------------------


function showView(view, focus = true) {
  state.view = view;
  $('live').hidden = view !== 'live';
  $('stats').hidden = view !== 'stats';
  $('rules').hidden = view !== 'rules';
  for (const t of ['live', 'stats', 'rules']) $(`tab-${t}`).setAttribute('aria-pressed', String(view === t));
  if (state.widget) writeHash();
  if (view === 'stats' && state.widget && statsView.dirty) loadStats();
  if (view === 'rules' && state.widget) loadRules();
  if (view === 'live') scheduleRender();
  if (focus) $(`tab-${view}`).focus();
}

// ---- live: SSE with a ticket, polling as the fallback ------------------------------

const live = {
  es: null,            // the EventSource (connecting or open)
  open: false,         // es is open: its events are the truth, polls are not needed
  lastEventId: null,   // for a reconnect that can replay instead of a new snapshot
  pollTimer: null,
  retryTimer: null,
  failures: 0,         // SSE attempts that failed in a row
  mode: 'offline',
};

function setMode(mode) {
  if (live.mode === mode) return;
  live.mode = mode;
  $('mode').dataset.mode = mode;
  $('mode-text').textContent = mode;
}

function stopLive() {
  if (live.es) live.es.close();
  live.es = null;
  live.open = false;
  clearInterval(live.pollTimer);
  clearTimeout(live.retryTimer);
  live.pollTimer = live.retryTimer = null;
  live.failures = 0;
  live.lastEventId = null;
  setMode('offline');
}

function startLive() {
  connectSSE(state.gen);
}

async function connectSSE(gen) {
  clearTimeout(live.retryTimer);
  live.retryTimer = null;
  let ticket;
  try {
    ticket = await api(wpath('/active-visitors/stream/ticket'), { method: 'POST' });
  } catch (e) {
    if (gen !== state.gen || e.status === 401) return;
    if (e.status === 403) { setMode('offline'); return; }   // polling would be refused too
    sseFailed(gen);                                         // 404 (no SSE here), 5xx, network
    return;
  }
  if (gen !== state.gen) return;
  // The ticket's own stream URL, or the documented one; never the token.
  let url = ticket.stream || `${API}${wpath('/active-visitors/stream')}?ticket=${encodeURIComponent(ticket.ticket)}`;
  if (live.lastEventId) url += `${url.includes('?') ? '&' : '?'}last_event_id=${encodeURIComponent(live.lastEventId)}`;
  url += `${url.includes('?') ? '&' : '?'}pages=true`;      // Pages now (pages.js)

  const es = new EventSource(url);
  live.es = es;
  let opened = false;
  const mine = fn => e => {      // handlers of a stream we since closed do nothing
    if (live.es !== es || gen !== state.gen) return;
    if (e.lastEventId) live.lastEventId = e.lastEventId;
    fn(e);
  };
  es.onopen = mine(() => {
    opened = true;
    live.open = true;
    live.failures = 0;
    stopPolling();
    setMode('live');
  });
  es.addEventListener('snapshot', mine(e => onSnapshot(JSON.parse(e.data))));
  es.addEventListener('enter', mine(e => upsert(JSON.parse(e.data), true)));
  es.addEventListener('update', mine(e => upsert(JSON.parse(e.data), false)));
  es.addEventListener('leave', mine(e => remove(JSON.parse(e.data).session_id)));
  es.addEventListener('pages', mine(e => pagesEvent(JSON.parse(e.data))));
  es.addEventListener('alert', mine(e => alertEvent(JSON.parse(e.data))));   // no id: not replayed
  // bye: the server ends this stream (lifetime, stopping, revoked, slow); a new
  // ticket and last_event_id bring us back without a gap.
  es.addEventListener('bye', mine(() => {
    es.close();
    live.es = null;
    live.open = false;
    connectSSE(gen);
  }));
  // EventSource would reconnect by itself with the same (spent) ticket: close it
  // and come back with a new ticket instead.
  es.onerror = mine(() => {
    es.close();
    live.es = null;
    live.open = false;
    if (opened) live.retryTimer = setTimeout(() => connectSSE(gen), 1000);
    else sseFailed(gen);
  });
}

// SSE cannot be had right now: poll every 5 s and try SSE again now and then
// (5 s, 10 s, 20 s … at most a minute apart).
function sseFailed(gen) {
  live.failures++;
  startPolling(gen);
  const delay = Math.min(SSE_RETRY_MAX_MS, SSE_RETRY_MIN_MS * 2 ** (live.failures - 1));
  live.retryTimer = setTimeout(() => connectSSE(gen), delay);
}

function startPolling(gen) {
  if (live.pollTimer) return;
  live.pollTimer = setInterval(() => pollOnce(gen), POLL_MS);
  pollOnce(gen);
}

function stopPolling() {
  clearInterval(live.pollTimer);
  live.pollTimer = null;
}

async function pollOnce(gen) {
  try {
    let cursor = null, visitors = [], first = null;
    const pages = api(wpath('/pages/live?limit=50')).catch(() => null);
    for (let page = 0; page < POLL_PAGES; page++) {
      const q = `?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const r = await api(wpath(`/active-visitors${q}`));
      first = first || r;
      visitors = visitors.concat(r.visitors);
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    // SSE may have come back while we waited: its list is newer than ours.
    if (gen !== state.gen || live.open || !live.pollTimer) return;
    onSnapshot({ now: first.now, total: first.total, visitors });
    pagesEvent(await pages);
    setMode('polling');
  } catch (e) {
    if (gen !== state.gen || live.open) return;
    if (e.status !== 401 && e.status !== 403) setMode('offline');
  }
}

// ---- the visitor list: data --------------------------------------------------------

let arrivals = 0;
// Revisions are numbered across all visitors, never per visitor: a session
// that leaves and enters again before the next frame is a new object whose
// revision must differ from the one its kept row was filled with.
let revisions = 0;
function prepare(v) {
  if (!v._arrival) v._arrival = ++arrivals;   // the order sessions were first seen in
  v._seen = Date.parse(v.last_seen) || 0;
  v._started = Date.parse(v.started) || v._seen;
  v._rev = ++revisions;
  return v;
}

function onSnapshot(data) {
  if (data.now) setSkew(data.now);
  const old = state.visitors;
  state.visitors = new Map();
  for (const v of data.visitors || []) {
    // an unchanged visitor keeps its object (and revision): its row is not refilled
    const prev = old.get(v.session_id);
    if (prev && JSON.stringify(strip(prev)) === JSON.stringify(v)) state.visitors.set(v.session_id, prev);
    else { v._arrival = prev ? prev._arrival : 0; state.visitors.set(v.session_id, prepare(v)); }
    chatUpdate(state.visitors.get(v.session_id));
  }
  state.total = Math.max(data.total ?? 0, state.visitors.size);
  state.capped = !!data.capped;   // the server lists only the newest HERENOW_SSE_MAX_SESSIONS
  changed();
}

function strip(v) {
  const o = {};
  for (const k of Object.keys(v)) if (k[0] !== '_') o[k] = v[k];
  return o;
}

// enter (full item) and update (session_id, status, last_seen and what changed)
// both apply as "set these fields".
function upsert(data, isEnter) {
  if (!data || !data.session_id) return;
  const v = state.visitors.get(data.session_id);
  if (v && !isEnter) Object.assign(v, data);
  else if (v) { for (const k of Object.keys(v)) if (k[0] !== '_' && !(k in data)) delete v[k]; Object.assign(v, data); }
  else state.visitors.set(data.session_id, data);
  prepare(state.visitors.get(data.session_id));
  chatUpdate(state.visitors.get(data.session_id));
  state.total = state.visitors.size;
  changed();
  if (details.sid === data.session_id) detailsLiveChanged();
}

function remove(sid) {
  if (!state.visitors.delete(sid)) return;
  state.total = state.visitors.size;
  changed();
  if (details.sid === sid) detailsLiveChanged();
}

function clearVisitors() {
  state.visitors = new Map();
  state.total = 0;
  resetRows();
  changed();
}

// Every row element goes (the list changes between now and the past: a row of
// one must not be reused for the other).
function resetRows() {
  for (const row of rows.values()) row.tr.remove();
  rows.clear();
}

// The visitors on screen: the past's while time travelling, else the live ones.
const viewVisitors = () => (state.past ? state.past.visitors : state.visitors);

// Cheap parts now (title, count: they matter in a background tab, where
// requestAnimationFrame does not run), the rows in the next frame.
// The count is O(visitors): at most every COUNT_MS, however many events come.
const COUNT_MS = 100;
let countQueued = false;
function changed() {
  if (!countQueued) {
    countQueued = true;
    setTimeout(() => { countQueued = false; updateCount(); }, COUNT_MS);
  }
  scheduleRender();
}

function updateCount() {
  const n = state.total;
  const name = state.widget ? state.widget.name : '';
  document.title = state.widget ? `(${n}) herenow — ${name}` : 'herenow';   // live, even in the past
  if (state.past) {
    const el = $('count');
    el.textContent = pastCountText();
    el.dataset.total = state.past.total;
    return;
  }
  let active = 0;
  for (const v of state.visitors.values()) if (v.status === 'active') active++;
  const idle = state.visitors.size - active;
  const more = state.capped ? '+' : '';
  const text = n === 0 ? 'No one is on the site.'
    : `${fmtInt(n)}${more} ${n === 1 && !more ? 'visitor' : 'visitors'} on the site now · ${fmtInt(active)}${more} active · ${fmtInt(idle)} idle`;
  const el = $('count');
  if (el.textContent !== text) el.textContent = text;
  el.dataset.total = n;
}

// ---- the visitor list: DOM -----------------------------------------------------------

const rows = new Map();        // session_id → {tr, cells, rev}
let renderQueued = false;

// A big list is laid out again on every render (rows move, cells change):
// with thousands of visitors sending, rendering each SSE tick kept the page
// busy for over a second at a time (a click waited that long). So renders of
// a big list are spaced out; a small one renders at every frame.
const BIG_LIST = 1000;
const BIG_RENDER_MS = 500;
// Moving rows is what costs (every row of a list sorted by last seen moves at
// a thousand beacons/s): a big list reorders at most every BIG_REORDER_MS
// (while the chat drawer is open, DRAWER_REORDER_MS: the agent is typing),
// and between reorders only refills the rows whose visitor changed.
const BIG_REORDER_MS = 2000;
const DRAWER_REORDER_MS = 5000;
let lastRender = 0, lastReorder = 0;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  // rAF batches any number of events into one DOM update per frame; a hidden
  // tab gets no frames, so a timer stands in there.
  const wait = viewVisitors().size > BIG_LIST ? lastRender + BIG_RENDER_MS - performance.now() : 0;
  if (document.hidden) setTimeout(render, Math.max(250, wait));
  else if (wait > 0) setTimeout(() => requestAnimationFrame(render), wait);
  else requestAnimationFrame(render);
}

const SORTS = {
  last_seen: (a, b) => a._seen - b._seen,
  time: (a, b) => b._started - a._started,                 // longer on the site = larger
  pages: (a, b) => (a.page_views || 0) - (b.page_views || 0),
  country: (a, b) => (a.country || '\uffff').localeCompare(b.country || '\uffff'),
  arrival: (a, b) => b._arrival - a._arrival,              // later arrivals = larger: stable
};

function matching() {
  const f = state.filter;
  const needle = f.page.trim().toLowerCase();
  const out = [];
  for (const v of viewVisitors().values()) {
    if (f.pin && (v.url ?? null) !== f.pin.url) continue;
    if (f.status && v.status !== f.status) continue;
    if (f.country && (v.country || '') !== f.country) continue;
    if (f.tag && !hasTag(v, f.tag)) continue;          // client-side: follows stream updates
    if (needle && !`${v.url || ''}\n${v.title || ''}`.toLowerCase().includes(needle)) continue;
    out.push(v);
  }
  const cmp = SORTS[state.sort.key], dir = state.sort.dir;
  // ties: most recently seen first, then the id, so the order is stable
  out.sort((a, b) => dir * cmp(a, b) || b._seen - a._seen || (a.session_id < b.session_id ? -1 : 1));
  return out;
}

// The list holds its order while the agent works in it (the pointer moves or
// a key is pressed there, within the last HOLD_MS; leaving it ends the hold):
// on a busy site the rows would otherwise reorder under the pointer many
// times a second. Rows keep their places, newcomers are added below, leavers
// go. "Paused" says so.
const HOLD_MS = 3000;
const hold = { inside: false, until: 0, timer: null };
const holding = () => hold.inside && Date.now() < hold.until;

function holdOrder(list) {
  const byId = new Map(list.map(v => [v.session_id, v]));
  const out = [];
  for (const tr of $('rows').children) {         // the order on screen
    const v = byId.get(tr.dataset.sid);
    if (v) { out.push(v); byId.delete(tr.dataset.sid); }
  }
  return out.concat([...byId.values()]);
}

function showHold() {
  const el = $('paused');
  const on = holding();
  if (el.hidden !== !on) el.hidden = !on;
  if (on && !el.textContent) el.textContent = 'Order paused while you work in the list';
}

function touchList() {
  const was = holding();
  hold.inside = true;
  hold.until = Date.now() + HOLD_MS;
  clearTimeout(hold.timer);
  hold.timer = setTimeout(() => { showHold(); scheduleRender(); }, HOLD_MS + 20);
  if (!was) showHold();
}

function render() {
  renderQueued = false;
  lastRender = performance.now();
  if (state.view !== 'live') return;       // showView('live') renders again
  const now = performance.now();
  const every = document.body.classList.contains('chat-open') ? DRAWER_REORDER_MS : BIG_REORDER_MS;
  const all = viewVisitors();
  const settle = all.size > BIG_LIST && now - lastReorder < every;
  const keep = rows.size && (holding() || settle);
  const list = keep ? holdOrder(matching()) : matching();
  if (!keep) lastReorder = now;
  if (settle && !holding()) scheduleRender();   // the reorder comes at the next turn
  showHold();
  const shown = list.length > MAX_ROWS ? list.slice(0, MAX_ROWS) : list;
  const tbody = $('rows');
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.sid : null;

  const want = new Set(shown.map(v => v.session_id));
  for (const [sid, row] of rows) {
    if (!want.has(sid)) { row.tr.remove(); rows.delete(sid); }
  }
  // Reuse each row element; refill only what changed; move only rows out of place.
  let cursor = tbody.firstChild;
  for (const v of shown) {
    let row = rows.get(v.session_id);
    if (!row) { row = makeRow(v.session_id); rows.set(v.session_id, row); }
    if (row.rev !== v._rev) fillRow(row, v);
    if (row.tr === cursor) cursor = cursor.nextSibling;
    else tbody.insertBefore(row.tr, cursor);
  }
  // Moving a focused row blurs it: give the focus back.
  if (focused && rows.has(focused) && document.activeElement !== rows.get(focused).tr) {
    rows.get(focused).tr.focus({ preventScroll: true });
  }
  tickRows();

  const cap = $('cap');
  if (list.length > MAX_ROWS) {
    cap.textContent = `showing ${MAX_ROWS} of ${fmtInt(list.length)} — narrow with the filters`;
    cap.hidden = false;
  } else if (list.length < all.size) {
    cap.textContent = `${fmtInt(list.length)} of ${fmtInt(all.size)} match the filters`;
    cap.hidden = false;
  } else cap.hidden = true;
  const empty = $('empty');
  empty.hidden = list.length > 0;
  const why = all.size ? 'No visitor matches the filters.'
    : !state.past ? 'No one is on the site right now.' : state.past.loading ? 'Loading…' : 'No one was on the site then.';
  if (empty.textContent !== why) empty.textContent = why;
  updateCountries();
}

function makeRow(sid) {
  const cells = {};
  const td = (key, label) => (cells[key] = h('td', { class: `c-${key}`, dataset: { label } }));
  const tr = h('tr', {
    tabindex: 0, dataset: { sid }, 'aria-describedby': 'row-hint',
    onclick: e => { if (!e.target.closest('a')) openDetails(sid, tr); },
    onkeydown: e => {
      if (e.key === 'Enter' && e.target === tr) { e.preventDefault(); openDetails(sid, tr); }
      else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        const next = e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
        if (next) { e.preventDefault(); next.focus(); }
      }
    },
  },
  td('status', 'Status'), td('visitor', 'Visitor'), td('loc', 'Location'), td('device', 'Device'),
  td('page', 'Page'), td('ref', 'Referrer'), td('seen', 'Last seen'), td('time', 'Time on site'),
  td('pages', 'Pages'), td('chat', 'Chat'));
  return { tr, cells, rev: -1 };
}

function fillRow(row, v) {
  const c = row.cells;
  row.rev = v._rev;
  row.tr.dataset.status = v.status || '';
  put(c.status,
    h('span', { class: `dot ${v.status === 'active' ? 'active' : 'idle'}`, 'aria-hidden': 'true' }),
    h('span', { class: 'status-text', text: v.status || 'unknown' }));
  const vid = v.visitor || v.session_id;
  put(c.visitor,
    h('span', { class: 'vid', title: `visitor ${vid} · session ${v.session_id}`, text: vid.length > 12 ? `${vid.slice(0, 10)}…` : vid }),
    v.name ? h('span', { class: 'name', text: v.name }) : null,
    v.email ? h('span', { class: 'email', text: v.email }) : null,
    annoChips(v));
  put(c.loc,
    v.country ? h('span', { class: 'cc' },
      h('span', { class: 'flag', 'aria-hidden': 'true', text: flag(v.country) }), ` ${v.country}`) : h('span', { class: 'muted', text: '–' }),
    v.city ? h('span', { class: 'city', text: v.city }) : null,
    v.ip ? h('span', { class: 'ip', text: v.ip }) : null);
  c.device.textContent = deviceText(v);
  put(c.page,
    h('span', { class: 'title', text: v.title || '(no title)' }),
    h('span', { class: 'url', title: v.url || '', text: v.url || '–' }));
  put(c.ref, v.referrer
    ? h('span', { title: v.referrer, text: hostOf(v.referrer) })
    : h('span', { class: 'muted', text: 'direct' }));
  c.pages.textContent = fmtInt(v.page_views || 0);
  put(c.chat, ...chatCell(v));
  row.v = v;
  row.tickKey = '';
}

// The clocks: time on site from `started`, last seen, both on the server's clock.
function tickRows() {
  const now = state.past ? state.past.at : serverNow();     // the past's clocks stand still
  for (const row of rows.values()) {
    const v = row.v;
    const t = fmtClock((now - v._started) / 1000), ago = fmtAgo(now - v._seen);
    if (row.tickKey === t + ago) continue;
    row.tickKey = t + ago;
    row.cells.time.textContent = t;
    row.cells.seen.textContent = ago;
  }
}

let countryKey = '';
function updateCountries() {
  const set = new Set();
  for (const v of viewVisitors().values()) if (v.country) set.add(v.country);
  if (state.filter.country) set.add(state.filter.country);
  const list = [...set].sort();
  const key = list.join(',');
  if (key === countryKey) return;
  countryKey = key;
  const sel = $('f-country');
  put(sel, h('option', { value: '', text: 'all' }),
    ...list.map(cc => h('option', { value: cc, text: `${flag(cc)} ${cc}` })));
  sel.value = state.filter.country;
}

function setSort(key) {
  const s2 = state.sort;
  if (key === 'arrival' && s2.key !== 'arrival') s2.column = s2.key;
  if (s2.key === key && key !== 'arrival') s2.dir = -s2.dir;
  else { s2.key = key; s2.dir = key === 'country' ? 1 : -1; }
  $('f-order').value = key === 'arrival' ? 'arrival' : '';
  hold.until = 0;               // a new order applies now
  lastReorder = 0;
  for (const th of document.querySelectorAll('#list th[aria-sort]')) {
    const k = th.querySelector('button').dataset.sort;
    th.setAttribute('aria-sort', k !== s2.key ? 'none' : s2.dir > 0 ? 'ascending' : 'descending');
  }
  scheduleRender();
}

// ---- wiring --------------------------------------------------------------------

function typing(el) {
  return el && (el.tagName === 'INPUT' || el.tagName === 'SELECT' || el.tagName === 'TEXTAREA' || el.isContentEditable);
}

function init() {
  $('signin-form').addEventListener('submit', e => {
    e.preventDefault();        // never a real submission (form-action 'none')
    const token = $('token').value.trim();
    if (!token) {
      $('signin-error').textContent = 'paste a token first';
      $('signin-error').hidden = false;
      return;
    }
    signIn(token, $('remember').checked);
  });
  $('signout').addEventListener('click', () => signOut());
  $('banner-close').addEventListener('click', hideBanner);
  $('widget').addEventListener('change', e => selectWidget(e.target.value));
  $('tab-live').addEventListener('click', () => showView('live'));
  $('tab-stats').addEventListener('click', () => showView('stats'));
  $('tab-rules').addEventListener('click', () => showView('rules'));

  $('f-page').addEventListener('input', e => { state.filter.page = e.target.value; scheduleRender(); });
  $('f-country').addEventListener('change', e => { state.filter.country = e.target.value; scheduleRender(); });
  $('f-status').addEventListener('change', e => { state.filter.status = e.target.value; scheduleRender(); });
  $('f-tag').addEventListener('change', e => { state.filter.tag = e.target.value; scheduleRender(); });
  // back from arrival: the column sorted before it
  $('f-order').addEventListener('change', e => setSort(e.target.value || state.sort.column || 'last_seen'));
  for (const b of document.querySelectorAll('#list th button')) b.addEventListener('click', () => setSort(b.dataset.sort));

  for (const b of document.querySelectorAll('[data-range]')) {
    b.addEventListener('click', () => {
      state.range = b.dataset.range;
      localStorage.setItem(RANGE_KEY, state.range);
      loadStats();
    });
  }
  $('stats-refresh').addEventListener('click', loadStats);
  for (const b of document.querySelectorAll('[data-export]')) b.addEventListener('click', () => exportCsv(b.dataset.export, b));

  const listEl = $('rows');      // the rows, not the headers: a sort applies at once
  listEl.addEventListener('pointermove', touchList);
  listEl.addEventListener('pointerdown', touchList);
  listEl.addEventListener('keydown', touchList);
  listEl.addEventListener('pointerleave', () => { hold.inside = false; showHold(); scheduleRender(); });
  initChat();
  initPages();
  initTime();
  initRules();
  initNotes();

  const dlg = $('details');
  $('d-close').addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', closeDetails);
  // a click on the backdrop (outside the dialog's box) closes it too
  dlg.addEventListener('click', e => {
    if (e.target !== dlg) return;
    const r = dlg.getBoundingClientRect();
    if (e.clientX < r.left || e.clientX > r.right || e.clientY < r.top || e.clientY > r.bottom) dlg.close();
  });

  // Shortcuts (not while typing): / filter, 1 live, 2 statistics, r refresh.
  document.addEventListener('keydown', e => {
    if (e.ctrlKey || e.metaKey || e.altKey || $('details').open || !state.widget) return;
    if (typing(e.target)) {
      if (e.key === 'Escape' && e.target.id === 'f-page') { e.target.value = ''; state.filter.page = ''; scheduleRender(); }
      return;
    }
    if (e.key === '/') { e.preventDefault(); showView('live', false); $('f-page').focus(); }
    else if (e.key === '1') showView('live');
    else if (e.key === '2') showView('stats');
    else if (e.key === '3') showView('rules');
    else if (e.key === 'r' && state.view === 'stats') loadStats();
  });

  setInterval(() => { if (state.view === 'live' && !document.hidden) tickRows(); }, 1000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) scheduleRender(); });
  // Refresh the statistics now and then while they are on screen.
  setInterval(() => { if (state.view === 'stats' && state.widget && !document.hidden) loadStats(); }, 60000);

  for (const b of document.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === state.range));
  const token = storedToken();
  if (token) signIn(token, null);
  else showSignIn();
}

init();
