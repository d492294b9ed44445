// tests/browser/widget.mjs: the widget on its own — widget/herenow.min.js in
// Debian's headless Chromium against a fake collector written here, which
// serves the script (with @HN_B@/@HN_C@ replaced, as the collector does),
// decodes every msgpack body and pixel query and checks it against
// docs/PROTOCOL.md §2. No Redis, no PostgreSQL: the end-to-end test with the
// real daemons is e2e.mjs.
//
//   node tests/browser/widget.mjs     (test_browser.sh runs it; Chromium profiles
//                                      in $HN_TMP, else a new temp dir)
//   HN_WIDGET_FILE=/path/x.min.js …   another build of the widget
//
// Prints one line per assertion ("ok - …" / "not ok - …") and exits 1 on any
// failure. Traffic goes to 127.0.0.1 only.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode } from '@msgpack/msgpack';
import {
  ROOT, ok, fail, check, eq, waitFor, expectWithin, guard, launch, newPage, setHidden, startSite, listen,
} from './lib.mjs';

const KEY = 'wk_test_widget';
const MIN_JS = process.env.HN_WIDGET_FILE || join(ROOT, 'widget', 'herenow.min.js');
const SID = /^[A-Za-z0-9_-]{16,64}$/;
const T = 2000;   // ms to wait for a beacon that is due at once

// ---- the fake collector -----------------------------------------------------------

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const beacons = [];   // {via: 'post'|'pixel', b, headers, bytes, dup}
const problems = [];  // protocol violations seen

function startCollector() {
  const script = readFileSync(MIN_JS, 'utf8').replace('@HN_B@', '/b').replace('@HN_C@', '/hc.js');
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method == 'GET' && url.pathname == '/h.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store' });
      return res.end(script);
    }
    if (req.method == 'GET' && url.pathname == '/p.gif') {
      const b = {};
      for (const [k, v] of url.searchParams) {
        if (k.startsWith('d.')) (b.d ||= {})[k.slice(2)] = v;
        else b[k] = /^(v|q|e|ts|sw|sh|wd)$/.test(k) ? +v : v;
      }
      record('pixel', b, req.headers);
      res.writeHead(200, { 'Content-Type': 'image/gif', 'Cache-Control': 'no-store' });
      return res.end(GIF);
    }
    if (req.method == 'POST' && url.pathname == '/b') {
      const chunks = [];
      req.on('data', c => chunks.push(c));
      req.on('end', () => {
        const bytes = Buffer.concat(chunks);
        try {
          const v = decode(bytes);
          for (const b of Array.isArray(v) ? v : [v]) record('post', b, req.headers, bytes);
        } catch (e) {
          problems.push(`undecodable body ${bytes.toString('hex').slice(0, 80)}: ${e.message}`);
        }
        // a widget without chat: 204 (the first page view's fetch reads it)
        res.writeHead(204, { 'Access-Control-Allow-Origin': '*' });
        res.end();
      });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  return server;
}

function record(via, b, headers, bytes) {
  const why = violation(b);
  if (why) problems.push(`${why}: ${JSON.stringify(b)}`);
  // A page's first beacon goes by fetch and, when that fetch fails, again by
  // sendBeacon (herenow.js transmit): a fetch that reached us and was then
  // cut off by the next navigation arrives twice, with the same session and
  // q (the collector takes it once). The copy is kept (the checks on every
  // beacon see it) but is not a new beacon for next() and qs().
  const dup = beacons.some(x => x.b.s === b.s && x.b.q === b.q && x.b.t === b.t);
  beacons.push({ via, b, headers, bytes, dup });
}

// PROTOCOL.md §2.2: what the collector would reject.
const LIMITS = { k: 64, u: 2048, ti: 512, r: 2048, n: 64, l: 35, nm: 255, em: 255, ph: 50 };
const TYPES = ['pv', 'hb', 'ev', 'hide', 'show', 'end', 'id'];
const bytes = s => Buffer.byteLength(s, 'utf8');

function violation(b) {
  if (!b || typeof b != 'object' || Array.isArray(b)) return 'not a map';
  if (b.v !== 1) return 'v is not 1';
  for (const k of ['k', 's', 't']) if (typeof b[k] != 'string' || !b[k]) return `missing ${k}`;
  if (!SID.test(b.s)) return 'bad session id';
  if (!TYPES.includes(b.t)) return 'bad type';
  for (const k of ['q', 'e', 'ts', 'sw', 'sh']) {
    if (k in b && !(Number.isInteger(b[k]) && b[k] >= 0)) return `${k} is not a uint`;
  }
  if (!(b.q >= 1)) return 'q < 1';
  if ('e' in b && b.e <= 0) return 'e sent as 0';
  for (const [k, max] of Object.entries(LIMITS)) {
    if (k in b && (typeof b[k] != 'string' || !b[k] || bytes(b[k]) > max)) return `${k} not a str of 1..${max} bytes`;
  }
  if (b.t == 'pv' && !b.u) return 'pv without u';
  if (b.t == 'ev' && !b.n) return 'ev without n';
  if ('wd' in b && b.wd !== true && b.wd !== 1) return 'wd is not true';
  if ('d' in b) {
    if (typeof b.d != 'object' || Array.isArray(b.d)) return 'd is not a map';
    const entries = Object.entries(b.d);
    if (entries.length > 32) return 'd has more than 32 entries';
    for (const [k, v] of entries) {
      if (!k || bytes(k) > 64) return 'bad d key';
      if (!['string', 'number', 'boolean'].includes(typeof v)) return `d.${k} has a bad type`;
      if (typeof v == 'string' && bytes(v) > 256) return `d.${k} over 256 bytes`;
      if (typeof v == 'number' && !Number.isFinite(v)) return `d.${k} not finite`;
    }
  }
  for (const k of Object.keys(b)) {
    if (!/^(v|k|s|t|q|u|ti|r|n|d|e|ts|sw|sh|l|nm|em|ph|wd)$/.test(k)) return `unknown key ${k}`;
  }
  return null;
}

// ---- helpers ----------------------------------------------------------------------

// The beacons after mark (an index into beacons) that match pred.
const after = (mark, pred = () => true) => beacons.slice(mark).filter(x => !x.dup && pred(x.b)).map(x => x.b);

// next(desc, mark, pred): the first beacon after mark matching pred, as an
// assertion that it comes within T ms.
async function next(desc, mark, pred, ms = T) {
  const found = await expectWithin(desc, ms, () => after(mark, pred)[0],
    () => `after ${mark}: ${JSON.stringify(after(mark).map(b => `${b.t}:${b.q}`))}`);
  return found || {};
}

// Every beacon of session s between q > from and q < to arrived: the q
// sequence of session s has no gap (a gap would be a beacon that was sent
// but should not have been, or one that got lost).
const qs = s => beacons.filter(x => !x.dup && x.b.s == s).map(x => x.b.q).sort((a, b) => a - b);

// sentinel(page): sends herenow('event', 'sentinel-N') from a 0 ms timer (after
// any timer the widget set before) and returns that beacon: everything the page
// sent before it has a lower q.
let sentinels = 0;
async function sentinel(page, mark) {
  const name = `sentinel-${++sentinels}`;
  await page.evaluate(n => setTimeout(() => herenow('event', n)), name);
  return next(`${name} arrives`, mark, b => b.n == name);
}

// ---- the tests --------------------------------------------------------------------

guard(async () => {
  const collector = startCollector();
  await listen(collector, 0);
  const COLLECTOR = `http://127.0.0.1:${collector.address().port}`;
  const site = await startSite({ port: 0, otherPort: 0, scriptSrc: `${COLLECTOR}/h.js`, key: KEY });
  const S = site.origin;

  const served = readFileSync(MIN_JS, 'utf8');
  check('the minified widget holds @HN_B@ and @HN_C@ once each',
    served.split('@HN_B@').length == 2 && served.split('@HN_C@').length == 2);

  // ---------------- a real visitor: pages, SPA, API, automatic events ----------------
  const ctx = await launch('visitor', { real: true, locale: 'en-US' });
  const kinds = [];   // resource types of the requests to the collector
  ctx.on('request', r => { if (r.url().startsWith(COLLECTOR + '/b') || r.url().startsWith(COLLECTOR + '/p.gif')) kinds.push(r.resourceType()); });
  const page = await newPage(ctx);

  let mark = beacons.length;
  await page.goto(`${S}/`);
  const pv1 = await next('landing: a pv', mark, b => b.t == 'pv');
  const s = pv1.s;
  check('landing: session id of 16+ chars of [A-Za-z0-9_-]', SID.test(s || ''), s);
  eq('landing: v, k, q = 1, url, title, no referrer, no wd',
    { v: 1, k: KEY, q: 1, u: `${S}/`, ti: 'Home — Test shop', r: null, wd: null },
    { v: pv1.v, k: pv1.k, q: pv1.q, u: pv1.u, ti: pv1.ti, r: pv1.r ?? null, wd: pv1.wd ?? null });
  const scr = await page.evaluate(() => [screen.width, screen.height]);
  eq('landing: screen and language', [scr[0], scr[1], 'en-US'], [pv1.sw, pv1.sh, pv1.l]);
  check('landing: ts is the client clock', Math.abs(pv1.ts - Date.now()) < 60000, pv1.ts);
  check('landing: the first page view by fetch (it reads the answer: chat or not)', kinds[0] == 'fetch', kinds);

  // a link to another page: end of this page (with engaged time), pv of the next
  mark = beacons.length;
  await page.click('#to-about');
  const end1 = await next('leaving a page: end', mark, b => b.t == 'end' && b.s == s);
  check('end: q = 2 and engaged time > 0', end1.q == 2 && end1.e > 0, end1);
  const pv2 = await next('next page: pv', mark, b => b.t == 'pv' && b.s == s);
  eq('next page: same session, q = 3, its url/title, referrer = the previous page',
    { q: 3, u: `${S}/about.html`, ti: 'About us — Test shop', r: `${S}/` }, { q: pv2.q, u: pv2.u, ti: pv2.ti, r: pv2.r });

  // reload: the session and its q go on (sessionStorage)
  mark = beacons.length;
  await page.reload();
  const pv3 = await next('reload: pv', mark, b => b.t == 'pv');
  eq('reload: same session, q goes on (end was 4)', [s, 5], [pv3.s, pv3.q]);

  // ---- SPA ----
  mark = beacons.length;
  await page.goto(`${S}/app/`);
  const app = await next('SPA: pv of the app', mark, b => b.t == 'pv' && b.u == `${S}/app/`);
  eq('SPA: app title', 'App home — Test app', app.ti);
  mark = beacons.length;
  await page.click('#r-pricing');
  const push = await next('SPA: pushState gives a pv', mark, b => b.t == 'pv');
  eq('SPA: pushState pv has the new url, the title set after pushState, the previous url as referrer',
    { u: `${S}/app/pricing`, ti: 'Pricing — Test app', r: `${S}/app/` }, { u: push.u, ti: push.ti, r: push.r });
  mark = beacons.length;
  await page.goBack();
  const pop = await next('SPA: back (popstate) gives a pv', mark, b => b.t == 'pv');
  eq('SPA: popstate pv', { u: `${S}/app/`, ti: 'App home — Test app' }, { u: pop.u, ti: pop.ti });
  mark = beacons.length;
  await page.click('#r-faq');
  const hash = await next('SPA: hash change gives a pv', mark, b => b.t == 'pv');
  eq('SPA: hashchange pv url', `${S}/app/#faq`, hash.u);
  // the same URL again (replaceState, pushState to itself): no pv
  mark = beacons.length;
  await page.evaluate(() => { history.replaceState({}, '', location.href); history.pushState({}, '', location.href); });
  const snt = await sentinel(page, mark);
  eq('SPA: replaceState/pushState to the same URL send nothing', [hash.q + 1], [snt.q]);

  // ---- the JS API ----
  mark = beacons.length;
  await page.evaluate(() => herenow('pageview'));
  const forced = await next("herenow('pageview'): a pv of the same URL", mark, b => b.t == 'pv');
  eq("herenow('pageview'): the current URL, q after the sentinel's, no referrer (same URL)", [`${S}/app/#faq`, snt.q + 1, null], [forced.u, forced.q, forced.r ?? null]);
  mark = beacons.length;
  await page.evaluate(() => herenow('event', 'signup', {
    plan: 'pro', seats: 3, ratio: 0.25, delta: -7, big: -70000, huge: 2 ** 40, neg64: -(2 ** 40),
    yes: true, no: false, empty: '', nothing: null, nan: NaN, inf: Infinity, obj: { a: 1 },
    text: 'ü'.repeat(200),
  }));
  const ev = await next('event: ev beacon', mark, b => b.t == 'ev');
  eq('event: name and props (ints of every size, float, bools; empty, null, NaN, Infinity left out; long strings cut at 256 bytes)', {
    n: 'signup',
    d: { plan: 'pro', seats: 3, ratio: 0.25, delta: -7, big: -70000, huge: 2 ** 40, neg64: -(2 ** 40), yes: true, no: false, obj: '[object Object]', text: 'ü'.repeat(128) },
  }, { n: ev.n, d: ev.d });
  mark = beacons.length;
  await page.evaluate(() => herenow('event', 'x'.repeat(100), Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`p${i}`, i]))));
  const big = await next('event: a long name and 40 props', mark, b => b.t == 'ev');
  eq('event: name cut at 64 bytes, 32 props kept', [64, 32], [big.n?.length, Object.keys(big.d || {}).length]);
  mark = beacons.length;
  await page.evaluate(() => herenow('event', 'plain', 'not an object'));
  const plain = await next('event: props that are not an object', mark, b => b.t == 'ev');
  eq('event: no d for props that are not an object', ['plain', null], [plain.n, plain.d ?? null]);
  mark = beacons.length;
  await page.evaluate(() => herenow('identify', { name: 'Ada Lovelace', email: 'ada@example.org', phone: '+44 20 7946 0000' }));
  const id = await next('identify: id beacon', mark, b => b.t == 'id');
  eq('identify: nm, em, ph', { nm: 'Ada Lovelace', em: 'ada@example.org', ph: '+44 20 7946 0000', s }, { nm: id.nm, em: id.em, ph: id.ph, s: id.s });

  // ---- visibility ----
  mark = beacons.length;
  await setHidden(page, true);
  const hide = await next('tab hidden: hide', mark, b => b.t == 'hide');
  check('hide carries the engaged time', hide.e > 0, hide);
  mark = beacons.length;
  await setHidden(page, false);
  const show = await next('tab visible again: show', mark, b => b.t == 'show');
  check('show carries no engaged time (the tab was hidden)', show.e === undefined, show);

  // ---- automatic events on the contact page ----
  mark = beacons.length;
  await page.goto(`${S}/contact.html`);
  const contact = await next('contact: pv', mark, b => b.t == 'pv' && b.u == `${S}/contact.html`);
  // Keep the page: a listener of the page that cancels link clicks (the
  // widget's own listener runs first, in the capture phase).
  await page.evaluate(() => document.addEventListener('click', e => { if (e.target.closest('a')) e.preventDefault(); }));
  mark = beacons.length;
  await page.click('#outbound');
  const out = await next('outbound link: ev', mark, b => b.t == 'ev');
  eq('outbound link: outbound_click with its url', { n: 'outbound_click', d: { url: `${site.other}/partner?ref=shop` } }, { n: out.n, d: out.d });
  mark = beacons.length;
  await page.click('#outbound-ignored');
  await page.click('#to-home', { modifiers: [] }).catch(() => {});   // same-site link: no event either
  const snt2 = await sentinel(page, mark);
  eq('no event for a link inside [data-herenow-ignore] nor for a same-site link', [out.q + 1], [snt2.q]);
  mark = beacons.length;
  await page.click('#chat');
  const chat = await next('chat button: chat_opened', mark, b => b.t == 'ev');
  eq('chat button: chat_opened with the attribute as source', { n: 'chat_opened', d: { source: 'contact-page' } }, { n: chat.n, d: chat.d });
  mark = beacons.length;
  await page.click('#chat-send');
  const msg = await next('chat message: CustomEvent forwarded', mark, b => b.t == 'ev');
  eq('chat message: chat_message_sent with the detail as props', { n: 'chat_message_sent', d: { length: 6 } }, { n: msg.n, d: msg.d });
  mark = beacons.length;
  await page.click('#send');
  const form = await next('form submit: ev', mark, b => b.t == 'ev');
  eq('form submit: form_submit with the form id and action path', { n: 'form_submit', d: { form: 'contact', action: '/contact/send' } }, { n: form.n, d: form.d });
  const thanks = await next('form submit: the next page', mark, b => b.t == 'pv');
  eq('form submit: thanks page with the contact page as referrer', [`${S}/thanks.html`, contact.u], [thanks.u, thanks.r]);

  // a real outbound navigation: the event goes out, then end
  mark = beacons.length;
  await page.goto(`${S}/contact.html`);
  await next('contact again: pv', mark, b => b.t == 'pv');
  mark = beacons.length;
  await Promise.all([page.waitForURL(`${site.other}/**`), page.click('#outbound')]);
  await next('navigating to another site: outbound_click', mark, b => b.n == 'outbound_click');
  await next('navigating to another site: end', mark, b => b.t == 'end');

  // ---- data-auto-events="off" ----
  mark = beacons.length;
  await page.goto(`${S}/noauto.html`);
  const noauto = await next('noauto: pv', mark, b => b.t == 'pv');
  await page.evaluate(() => {
    document.addEventListener('click', e => { if (e.target.closest('a')) e.preventDefault(); });
    document.addEventListener('submit', e => e.preventDefault());
  });
  mark = beacons.length;
  await page.click('#outbound');
  await page.click('#send');
  await page.click('#chat');
  const chat2 = await next('noauto: the chat hook still works', mark, b => b.t == 'ev');
  eq('noauto: no outbound_click or form_submit, chat_opened without source', { n: 'chat_opened', q: noauto.q + 1, d: null },
    { n: chat2.n, q: chat2.q, d: chat2.d ?? null });

  // ---- limits ----
  mark = beacons.length;
  await page.goto(`${S}/long.html`);
  const long = await next('long title: pv', mark, b => b.t == 'pv');
  eq('long title: cut at 512 bytes on a character boundary', 'é'.repeat(256), long.ti);
  mark = beacons.length;
  const longUrl = `${S}/about.html?q=${'x'.repeat(3000)}`;
  await page.goto(longUrl);
  const lu = await next('long URL: pv', mark, b => b.t == 'pv');
  eq('long URL: cut at 2048 bytes', longUrl.slice(0, 2048), lu.u);

  // ---- the tag twice: one widget ----
  mark = beacons.length;
  await page.goto(`${S}/twice.html`);
  const tw = await next('two tags: pv', mark, b => b.t == 'pv' && b.u == `${S}/twice.html`);
  eq('two tags: the page has both', 2, await page.evaluate(() => document.querySelectorAll('script[data-widget]').length));
  const snt3 = await sentinel(page, mark);
  eq('two tags: one pv, nothing else (the second copy does nothing)', [tw.q + 1, 1], [snt3.q, after(mark, b => b.t == 'pv').length]);

  // ---- a second tab: its own session; closing a page sends end ----
  const tab = await ctx.newPage();
  mark = beacons.length;
  await tab.goto(`${S}/about.html`);
  const tabPv = await next('second tab: pv', mark, b => b.t == 'pv');
  check('second tab: its own session, q = 1', tabPv.s && tabPv.s != s && tabPv.q == 1, tabPv);
  mark = beacons.length;
  await tab.close({ runBeforeUnload: true });
  const tabEnd = await next('closing a tab: end', mark, b => b.t == 'end');
  eq('closing a tab: end of its session', tabPv.s, tabEnd.s);

  // ---- no cookies, no localStorage ----
  eq('no cookies set anywhere', [], await ctx.cookies());
  eq('nothing in localStorage, only "herenow" in sessionStorage', [0, ['herenow']],
    await page.evaluate(() => [localStorage.length, Object.keys(sessionStorage)]));
  check('beacons carry no Cookie header', beacons.every(x => !x.headers.cookie));
  await ctx.close();

  // ---------------- the stub queues early calls ----------------
  const ctx2 = await launch('stub', { real: true });
  const p2 = await newPage(ctx2);
  mark = beacons.length;
  await p2.goto(`${S}/stub.html`);
  const early = await next('stub: queued event arrives', mark, b => b.n == 'early_event');
  const sess = after(mark, b => b.s == early.s).sort((a, b) => a.q - b.q);
  eq('stub: pv first, then the queued identify and event, in order',
    ['pv:1', 'id:2:Early Bird:early@example.org', 'ev:3:early_event:{"step":1}'],
    sess.slice(0, 3).map(b => [b.t, b.q, b.nm || b.n, b.em || (b.d && JSON.stringify(b.d))].filter(x => x !== undefined).join(':')));
  await ctx2.close();

  // ---------------- heartbeats and session expiry (Playwright's fake clock) ----------------
  const ctx3 = await launch('clock', { real: true });
  const p3 = await newPage(ctx3);
  await p3.clock.install();
  mark = beacons.length;
  await p3.goto(`${S}/`);
  const c1 = await next('clock: pv', mark, b => b.t == 'pv');
  mark = beacons.length;
  await p3.clock.runFor(30000);
  const hb = await next('30 s later: hb', mark, b => b.t == 'hb');
  check('hb: q = 2, engaged time ≈ 30 s', hb.q == 2 && hb.e >= 30000 && hb.e < 40000, hb);
  await p3.clock.runFor(30000);
  const hb2 = await next('60 s: another hb', mark, b => b.t == 'hb' && b.q == 3);
  check('hb 2: same session', hb2.s == c1.s, hb2);
  mark = beacons.length;
  await setHidden(p3, true);
  const h3 = await next('clock: hide', mark, b => b.t == 'hide');
  mark = beacons.length;
  await p3.clock.runFor(31 * 60 * 1000);   // 31 min in a hidden tab: no heartbeats
  await setHidden(p3, false);
  const fresh = await next('back after 31 min: a pv of a new session', mark, b => b.t == 'pv');
  const fresh2 = await next('back after 31 min: show', mark, b => b.t == 'show');
  eq('hidden for 31 min: nothing sent meanwhile, then a new session starts with pv (q 1) and show (q 2)',
    { oldLast: h3.q, newSession: true, pv: 1, show: 2, url: `${S}/`, r: null },
    { oldLast: Math.max(...qs(c1.s)), newSession: fresh.s != c1.s && fresh2.s == fresh.s, pv: fresh.q, show: fresh2.q, url: fresh.u, r: fresh.r ?? null });
  await ctx3.close();

  // ---------------- the transports ----------------
  async function viaTransport(name, init) {
    const c = await launch(`tr-${name}`, { real: true });
    await c.addInitScript(init);
    const types = [];
    c.on('request', r => { if (r.url().startsWith(COLLECTOR + '/b') || r.url().startsWith(COLLECTOR + '/p.gif')) types.push(r.resourceType()); });
    const p = await newPage(c);
    const m = beacons.length;
    await p.goto(`${S}/`);
    const pv = await next(`${name}: pv`, m, b => b.t == 'pv');
    await p.evaluate(() => herenow('event', 'buy', { plan: 'pro', seats: 2 }));
    const e = await next(`${name}: ev`, m, b => b.t == 'ev');
    await c.close();
    return { pv, e, types, via: beacons.slice(m).map(x => x.via) };
  }
  const f1 = await viaTransport('no-sendbeacon', () => { delete Navigator.prototype.sendBeacon; });
  eq('no sendBeacon: fetch (keepalive, no-cors) carries the beacons', ['fetch', 'post'], [f1.types[0], f1.via[0]]);
  const f2 = await viaTransport('sendbeacon-false', () => { Navigator.prototype.sendBeacon = () => false; });
  eq('sendBeacon returns false: fetch', ['fetch', 'post'], [f2.types[0], f2.via[0]]);
  // Every browser that runs the script has fetch; the pixel is for pages
  // without JavaScript (docs/WIDGET.md §7), never sent by the script.
  check('no beacon went by the pixel', beacons.every(x => x.via != 'pixel'));

  // ---------------- navigator.webdriver ----------------
  const ctx4 = await launch('webdriver', { webdriver: true });
  const p4 = await newPage(ctx4);
  check('webdriver context: navigator.webdriver is true', await p4.evaluate(() => navigator.webdriver === true));
  mark = beacons.length;
  await p4.goto(`${S}/`);
  const wd = await next('webdriver: pv', mark, b => b.t == 'pv');
  eq('webdriver: every beacon says wd: true', true, wd.wd);
  await ctx4.close();

  // ---------------- the whole run ----------------
  check(`every beacon (${beacons.length}) is valid by PROTOCOL.md §2`, problems.length == 0 && beacons.length > 40, problems.slice(0, 3));
  check('every POST body is one msgpack map with str keys (0x8X or 0xde)',
    beacons.filter(x => x.bytes).every(x => (x.bytes[0] & 0xf0) == 0x80 || x.bytes[0] == 0xde));
  site.close();
  collector.close();
});
