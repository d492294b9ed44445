// api/www/pages.js: "Pages now" beside the live list (docs/DASHBOARD.md).
//
//   stream opened with pages=true ── event `pages` ──► pagesEvent() ─┐
//   polling: GET …/pages/live?limit=50 ──────────────► pagesEvent() ─┤
//   time travel: the past list grouped by url (pastPages) ───────────┴─► renderPages()
//
// A click on a page pins the live list to that url (state.filter.pin, applied
// by app.js's matching() to every render, so rows that come, go or move there
// follow live); the chip "Page: /path ×" removes it. Titles and URLs are the
// visitors' data: text nodes only; dir=auto for titles (RTL), the full value
// in `title` where the text is ellipsized.
import { h, put, state, $, fmtInt, changed, viewVisitors } from './app.js';

// pages shown before "Show all": fewer on a phone, where the list is below them
const PHONE = matchMedia('(max-width: 760px)');
const short = () => (PHONE.matches ? 3 : 8);
const pg = { now: null, all: false, key: '' };   // key: what is on screen

// The live table (the stream's `pages` event or GET pages/live): it replaces the last.
export function pagesEvent(data) {
  if (!data || !Array.isArray(data.pages)) return;
  pg.now = data;
  if (!state.past) renderPages();
}

// A widget switch or sign-out: nothing to show, no pin.
export function resetPages() {
  pg.now = null;
  pg.all = false;
  pg.key = '';
  state.filter.pin = null;
  showPin();
  renderPages();
}

// The pages of the past list, in the order of pages/live: live desc, active
// desc, url ascending (null first: it is the smallest), as the API has it.
function pastPages() {
  const by = new Map();
  for (const v of viewVisitors().values()) {
    const key = v.url ?? null;
    let p = by.get(key);
    if (!p) by.set(key, (p = { url: key, title: v.title ?? null, live: 0, active: 0, idle: 0, seen: -1 }));
    p.live++;
    if (v.status === 'active') p.active++; else p.idle++;
    if (v._seen > p.seen) { p.seen = v._seen; p.title = v.title ?? null; }
  }
  const pages = [...by.values()].sort((a, b) => b.live - a.live || b.active - a.active ||
    (a.url === b.url ? 0 : a.url === null ? -1 : b.url === null ? 1 : a.url < b.url ? -1 : 1));
  let active = 0;
  for (const p of pages) active += p.active;
  return { pages, total_pages: pages.length, live: viewVisitors().size, active };
}

// "/pricing?plan=pro" of a URL (its origin is the site's); the URL itself when it is not one.
export function pathOf(url) {
  if (url == null) return '(no URL yet)';
  try {
    const u = new URL(url);
    return `${u.pathname}${u.search}${u.hash}` || '/';
  } catch { return url; }
}

const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };

export function renderPages() {
  const data = state.past ? pastPages() : pg.now;
  const list = $('pages-list');
  const pages = data ? data.pages : [];
  setText($('pages-h'), state.past ? 'Pages then' : 'Pages now');
  if ($('pages').classList.contains('is-past') !== !!state.past) $('pages').classList.toggle('is-past');
  const sum = !data ? 'loading…'
    : `${fmtInt(data.total_pages)} page${data.total_pages === 1 ? '' : 's'} · ${fmtInt(data.live)} ${state.past ? 'there' : 'live'} · ${fmtInt(data.active)} active${data.capped ? ' (of the newest)' : ''}`;
  setText($('pages-sum'), sum);
  const shown = pg.all ? pages : pages.slice(0, short());
  const more = $('pages-more');
  if (more.hidden !== pages.length <= short()) more.hidden = !more.hidden;
  const busiest = data && data.total_pages > pages.length;    // the event has the 50 busiest
  setText(more, pg.all ? 'Show fewer' : `Show ${busiest ? 'the' : 'all'} ${fmtInt(pages.length)}${busiest ? ' busiest' : ''}`);
  if (more.getAttribute('aria-expanded') !== String(pg.all)) more.setAttribute('aria-expanded', String(pg.all));
  if (list.dataset.pages !== String(pages.length)) list.dataset.pages = String(pages.length);
  const max = Math.max(1, ...pages.map(p => p.live));
  const pin = state.filter.pin;
  // A busy site sends a table every second, mostly the same: touch the DOM only for a change.
  const key = JSON.stringify([shown.map(p => [p.url, p.title, p.live, p.active]), max, pin, !!state.past, !data]);
  if (key === pg.key) return;
  pg.key = key;
  put(list, shown.length ? shown.map(p => pageItem(p, max, pin && pin.url === p.url))
    : h('li', { class: 'muted pages-empty', text: data ? (state.past ? 'No one was on the site then.' : 'No one is on the site right now.') : '' }));
}

function pageItem(p, max, pinned) {
  const path = pathOf(p.url);
  const title = p.title || '(no title)';
  const bar = h('span', { class: 'pg-bar' });
  bar.style.width = `${Math.max(2, Math.round((p.live / max) * 100))}%`;   // CSSOM: allowed by the CSP
  return h('li', { dataset: { url: p.url ?? '' } },
    h('button', {
      type: 'button', class: 'pg', 'aria-pressed': String(!!pinned),
      title: `${title}\n${p.url ?? '(no URL yet)'}\n${pinned ? 'Showing only this page: click to show every page' : 'Show only the visitors on this page'}`,
      onclick: () => (pinned ? pinPage(null) : pinPage(p)),
    },
    h('span', { class: 'pg-title', dir: 'auto', text: title }),
    h('span', { class: 'pg-path', dir: 'ltr', text: path }),
    h('span', { class: 'pg-live', title: `${p.live} ${state.past ? 'there' : 'live'}`, text: fmtInt(p.live) }),
    h('span', { class: 'pg-active', title: `${p.active} active, ${p.live - p.active} idle`, text: `${fmtInt(p.active)} active` }),
    h('span', { class: 'pg-share', 'aria-hidden': 'true' }, bar)));
}

// pinPage(page | null): the live list shows only the visitors on that url.
export function pinPage(p) {
  state.filter.pin = p ? { url: p.url ?? null } : null;
  showPin();
  renderPages();
  changed();
}

function showPin() {
  const pin = state.filter.pin;
  $('pin').hidden = !pin;
  if (!pin) return;
  const path = pathOf(pin.url);
  $('pin-text').textContent = `Page: ${path}`;
  $('pin').title = pin.url ?? '(no URL yet)';
  $('pin').dataset.url = pin.url ?? '';
}

export function initPages() {
  $('pages-more').addEventListener('click', () => { pg.all = !pg.all; renderPages(); });
  $('pin-clear').addEventListener('click', () => pinPage(null));
  PHONE.addEventListener('change', renderPages);
  renderPages();
}
