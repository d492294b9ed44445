// tests/browser/dashboard.mjs: the dashboard (api/www, docs/DASHBOARD.md) in
// Debian's headless Chromium against the real api, which serves its files at
// /. Visitors come from UDP beacons (herenowctl send) and from a second
// Chromium on the test site with the collector's /h.js; what the dashboard
// shows is compared with the API's answers. tests/integration/test_dashboard.sh
// starts Redis, PostgreSQL, the collector and the api, seeds history, and runs
// this.
//
// Environment (all set by test_dashboard.sh):
//   HN_TMP, HN_API_URL, HN_COLLECTOR, HN_UDP (host:port), HN_CTL (herenowctl), HN_LOADGEN
//   HN_TOKEN (all widgets), HN_OTHER_TOKEN (HN_OTHER_WIDGET_ID only),
//   HN_REVOKE_TOKEN / HN_REVOKE_TOKEN_ID (all widgets; revoked during the run)
//   HN_WIDGET_ID, HN_WIDGET_KEY, HN_CROWD_WIDGET_ID, HN_CROWD_KEY
//   HN_BIG_WIDGET_ID (rollups only: six-digit hours, long and right-to-left pages)
//   HN_SITE_PORT, HN_OTHER_PORT, HN_ARTIFACTS (screenshots)
//   HN_DEBUG_SSE=1 (optional): log the dashboard's SSE messages to $HN_TMP/sse.log
//
// One line per assertion ("ok - …" / "not ok - …"); exit 1 on any failure.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ROOT, TMP, ok, fail, check, eq, waitFor, expectWithin, guard, launch, newPage, setHidden, startSite,
} from './lib.mjs';

const env = name => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('HN_API_URL');
const API = `${BASE}/api/visitor-tracking`;
const TOKEN = env('HN_TOKEN');
const OTHER_TOKEN = env('HN_OTHER_TOKEN');
const REVOKE_TOKEN = env('HN_REVOKE_TOKEN');
const WID = env('HN_WIDGET_ID');
const KEY = env('HN_WIDGET_KEY');
const OWID = env('HN_OTHER_WIDGET_ID');
const CWID = env('HN_CROWD_WIDGET_ID');
const CKEY = env('HN_CROWD_KEY');
const BWID = env('HN_BIG_WIDGET_ID');
const CTL = env('HN_CTL');
const UDP = env('HN_UDP');
const ART = process.env.HN_ARTIFACTS || join(ROOT, 'build', 'artifacts', 'dashboard');

const LIVE = 1000;        // ms: a beacon shows in the dashboard within this
const WIDGET_NAME = 'Dashboard shop';
const UA = {
  chrome: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  firefox: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
};
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// ---- API, beacons ---------------------------------------------------------------------

async function api(path, { token = TOKEN, method = 'GET', timeout = 10000 } = {}) {
  const r = await fetch(API + path, { method, headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeout) });
  const body = await r.text();
  let json = null;
  try { json = JSON.parse(body); } catch { /* not JSON */ }
  return { status: r.status, json, body };
}

// send(session, type, ...flags): one UDP beacon to the test widget, through herenowctl.
function send(session, type, ...flags) {
  execFileSync(CTL, ['send', '--to', UDP, '--key', KEY, '--session', session, '--type', type, ...flags], { stdio: 'ignore' });
}

const sessionOf = page => page.evaluate(() => (sessionStorage.getItem('herenow') || '').split(' ')[0]);

// expectBy(desc, t0, ms, fn): fn becomes truthy within ms of t0 (the moment
// the cause happened, e.g. a beacon sent), not of this call.
async function expectBy(desc, t0, ms, fn, why) {
  const v = await waitFor(fn, Math.max(0, t0 + ms - Date.now()));
  if (v) ok(`${desc} (${Date.now() - t0} ms)`);
  else fail(`${desc} (not within ${ms} ms)`, typeof why == 'function' ? await why() : why);
  return v;
}

// ---- what the pages do: console, CSP, requests -------------------------------------------

const seen = { console: [], pageErrors: [], csp: [], urls: [] };

// watch(ctx, name): every page of the context reports its console errors and
// warnings, uncaught errors, CSP violations (a listener in the page) and the
// URL of every request.
async function watch(ctx, name) {
  await ctx.exposeBinding('__hnCspViolation', (_src, what) => seen.csp.push(`${name}: ${what}`));
  await ctx.addInitScript(() => document.addEventListener('securitypolicyviolation', e =>
    window.__hnCspViolation(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`)));
  const hook = page => {
    page.on('console', m => {
      if (m.type() == 'error' || m.type() == 'warning') seen.console.push({ name, type: m.type(), text: m.text() });
    });
    page.on('pageerror', e => seen.pageErrors.push(`${name}: ${e.message}`));
  };
  ctx.pages().forEach(hook);
  ctx.on('page', hook);
  ctx.on('request', r => seen.urls.push({ name, url: r.url(), method: r.method(), t: Date.now() }));
}

// ---- reading the dashboard ---------------------------------------------------------------

// The row of a session as the dashboard shows it, or null.
function row(page, sid) {
  return page.evaluate(sid => {
    const tr = document.querySelector(`#rows tr[data-sid="${CSS.escape(sid)}"]`);
    if (!tr) return null;
    const text = sel => (tr.querySelector(sel)?.textContent || '').trim();
    return {
      status: tr.dataset.status, statusText: text('.c-status'), visitor: text('.c-visitor'),
      name: text('.c-visitor .name'), title: text('.c-page .title'), url: text('.c-page .url'),
      loc: text('.c-loc'), device: text('.c-device'), ref: text('.c-ref'), time: text('.c-time'),
      pages: text('.c-pages'), chat: text('.c-chat .msgs'),
    };
  }, sid);
}

async function rowWithin(desc, page, sid, pred, { t0 = Date.now(), ms = LIVE } = {}) {
  let last;
  return expectBy(desc, t0, ms, async () => {
    last = await row(page, sid);
    return last && pred(last) && last;
  }, async () => {
    // what the server had, and the beacons the browser sent, to tell a slow
    // beacon from a slow dashboard
    const at = Date.now() - t0;
    const r = await api(`/widgets/${WID}/active-visitors?limit=1000`, { timeout: 2000 })
      .catch(e => ({ status: String(e), json: null }));
    const v = r.json?.visitors?.find(x => x.session_id == sid);
    const beacon = u => { try { return new URL(u.url).pathname == '/b'; } catch { return false; } };
    const sent = seen.urls.filter(u => u.name == 'visitor' && beacon(u)).slice(-3).map(u => `${u.method} ${u.t - t0} ms`);
    return `row: ${JSON.stringify(last)}; the API at ${at} ms (${r.status}): ` +
      `${v ? JSON.stringify(v).slice(0, 600) : `no such visitor among ${r.json?.visitors?.length ?? '?'}`}; ` +
      `the visitor's last beacons (ms from t0): ${sent.join(', ') || 'none'}`;
  });
}

const rowIds = page => page.$$eval('#rows tr', trs => trs.map(tr => tr.dataset.sid));
const modeText = page => page.textContent('#mode-text');
const dialogOpen = page => page.evaluate(() => document.querySelector('#details').open);

// "m:ss" / "h:mm:ss" → seconds
const clockSeconds = t => t.split(':').reduce((a, x) => a * 60 + Number(x), 0);

async function signIn(page, token, { remember = false } = {}) {
  await page.waitForSelector('#signin-form', { state: 'visible' });
  await page.fill('#token', token);
  if (remember) await page.check('#remember');
  await page.click('#signin-btn');
}

// ---- statistics at a glance (issue 15, item 4) ---------------------------------------------

// What the statistics panel draws, read in the page: every chart label's box
// against the SVG's, the Top pages rows, what sticks out of the viewport.
const statsLayout = page => page.evaluate(() => {
  const r = el => el.getBoundingClientRect();
  const svg = document.querySelector('#chart'), sb = r(svg);
  const labels = [...svg.querySelectorAll('text.axis')].map(t => {
    const b = r(t);
    return { text: t.textContent, inside: b.left >= sb.left - 0.5 && b.right <= sb.right + 0.5 && b.top >= sb.top - 0.5 && b.bottom <= sb.bottom + 0.5,
      left: Math.round(b.left - sb.left), right: Math.round(sb.right - b.right) };
  });
  const rows = by => [...document.querySelectorAll(`#breakdowns section[data-by="${by}"] tbody tr`)].map(tr => {
    const td = tr.querySelector('.b-value'), sec = r(tr.closest('section'));
    return { text: td.textContent, title: td.title, dir: td.getAttribute('dir'), direction: getComputedStyle(td).direction,
      cut: td.scrollWidth > td.clientWidth, inside: r(td).left >= sec.left && r(td).right <= sec.right };
  });
  // elements that reach past the viewport, but for text cut on purpose inside
  // an ellipsized cell or figure (its box is clipped, it is not on screen)
  const out = [...document.querySelectorAll('#stats *')].filter(el => {
    if (el.closest('.b-value, #figures dd') && !el.matches('.b-value, #figures dd')) return false;
    const b = r(el);
    return b.width > 0 && (b.right > innerWidth + 0.5 || b.left < -0.5);
  }).map(el => `${el.tagName.toLowerCase()}.${el.getAttribute('class') || ''} ${Math.round(r(el).left)}..${Math.round(r(el).right)}`);
  const yLabels = labels.filter((l, i) => svg.querySelectorAll('text.axis')[i].getAttribute('text-anchor') == 'end');
  return { labels, yLabels, pages: rows('page'), referrers: rows('referrer'), out,
    scrollWidth: document.documentElement.scrollWidth, innerWidth,
    figuresCut: [...document.querySelectorAll('#figures dd')].filter(dd => dd.scrollWidth > dd.clientWidth).map(dd => dd.title),
    viewBoxWidth: svg.viewBox.baseVal.width, boxWidth: document.querySelector('#chart-box').clientWidth };
});

async function loadStatsOf(page, click, range) {
  await page.evaluate(() => { delete document.querySelector('#stats').dataset.loaded; });
  await click();
  await page.waitForSelector(`#stats[data-loaded="${range}"]`, { timeout: 10000 });
}

async function statsAtAGlance(dash) {
  // the test's own widget: pages on several hosts (shop.example and the test
  // site on 127.0.0.1) → host and path, never the scheme
  await dash.selectOption('#widget', WID);
  await dash.click('#tab-stats');
  await loadStatsOf(dash, () => dash.click('[data-range="30d"]'), '30d');
  const own = await statsLayout(dash);
  check(`Top pages, several hosts: each row is host + path, no scheme (${own.pages.map(p => p.text).join(' ')})`,
    own.pages.length >= 2 && own.pages.every(p => !/^[a-z]+:\/\//.test(p.text) && p.text == p.title.replace(/^https?:\/\//, '')),
    own.pages);

  // "Big numbers": six-digit hours, seven-digit days, long and right-to-left values
  // (the range is still the last one the statistics above chose: 30 d)
  await loadStatsOf(dash, () => dash.selectOption('#widget', BWID), '30d');
  for (const [range, interval] of [['24h', 'hour'], ['30d', 'day']]) {
    await loadStatsOf(dash, () => dash.click(`[data-range="${range}"]`), range);
    const series = (await api(`/widgets/${BWID}/timeseries?from=${range}&interval=${interval}`)).json;
    const max = Math.max(...series.buckets.map(b => Math.max(b.page_views, b.visitors)));
    const L = await statsLayout(dash);
    const top = Math.max(...L.yLabels.map(l => +l.text.replace(/,/g, '')));
    check(`big numbers ${range}: the top y label is a whole number ≥ the largest bucket (${L.yLabels.map(l => l.text).join(', ')} for ${max})`,
      L.yLabels.length == 3 && top >= max && max >= (range == '24h' ? 100000 : 1000000), L.yLabels);
    eq(`big numbers ${range}: every axis label (y and x) is wholly inside the chart`, [],
      L.labels.filter(l => !l.inside));
  }
  await loadStatsOf(dash, () => dash.click('[data-range="24h"]'), '24h');
  const L = await statsLayout(dash);
  const bd = (await api(`/widgets/${BWID}/breakdown?by=page&from=24h&limit=10`)).json;
  eq('Top pages, one host: each row is the path (decoded), the whole URL in its title',
    bd.results.map(r => [decodeURI(new URL(r.value).pathname), r.value]), L.pages.map(p => [p.text, p.title]));
  const rtl = L.pages.find(p => p.text == '/متجر/عروض');
  check('Top pages: the right-to-left path reads right to left (dir=auto → rtl), inside its panel',
    rtl && rtl.dir == 'auto' && rtl.direction == 'rtl' && rtl.inside, rtl);
  const long = L.pages.find(p => p.text.startsWith('/blog/'));
  check('Top pages: the long path is one line cut with an ellipsis, inside its panel, the whole URL in its title',
    long && long.cut && long.inside && long.title.endsWith('slug-end'), long);
  const lref = L.referrers.find(p => p.title.startsWith('a-very-long-subdomain'));
  check('Referrers: the long host is cut, inside its panel', lref && lref.cut && lref.inside, lref);
  eq('1280 px: no figure is cut (seven digits included)', [], L.figuresCut);
  await shot(dash, 'stats-big.png', { fullPage: true });
  ok(`screenshot: ${ART}/stats-big.png`);

  // a phone: 375 px; the chart is drawn again at the box's width
  await dash.setViewportSize({ width: 375, height: 812 });
  let P;
  await expectWithin('375 px: the chart is redrawn at its box\'s width', 3000, async () => {
    P = await statsLayout(dash);
    return Math.abs(P.viewBoxWidth - P.boxWidth) <= 1 && P.boxWidth < 375;
  }, () => JSON.stringify({ viewBox: P?.viewBoxWidth, box: P?.boxWidth }));
  check(`375 px: no horizontal scroll (scrollWidth ${P.scrollWidth} ≤ ${P.innerWidth})`, P.scrollWidth <= P.innerWidth, P.scrollWidth);
  eq('375 px: no element of the statistics reaches past the viewport', [], P.out);
  eq('375 px: every axis label is wholly inside the chart', [], P.labels.filter(l => !l.inside));
  check('375 px: Top pages rows stay inside their panel', P.pages.every(p => p.inside), P.pages);
  eq('375 px: no figure is cut', [], P.figuresCut);
  await shot(dash, 'stats-phone.png', { fullPage: true });
  ok(`screenshot: ${ART}/stats-phone.png`);
  await dash.setViewportSize({ width: 1280, height: 860 });
}

async function shot(page, name, options = {}) {
  const path = join(ART, name);
  await page.screenshot({ path, ...options });
  return path;
}

// ---- the test -------------------------------------------------------------------------------

guard(async () => {
  mkdirSync(ART, { recursive: true });
  const site = await startSite({
    port: +env('HN_SITE_PORT'), otherPort: +env('HN_OTHER_PORT'), scriptSrc: `${env('HN_COLLECTOR')}/h.js`, key: KEY,
  });
  const S = site.origin;

  // ---------------- sign in, pick the widget ----------------
  const dctx = await launch('dashboard', { viewport: { width: 1280, height: 860 }, acceptDownloads: true, locale: 'en-US' });
  await watch(dctx, 'dashboard');
  const dash = await newPage(dctx);
  if (process.env.HN_DEBUG_SSE) {
    // Every SSE message and stream request of the dashboard into $HN_TMP/sse.log
    // (with HN_KEEP_TMP=1): what the server sent, when, to tell a server gap
    // from a dashboard one.
    const cdp = await dctx.newCDPSession(dash);
    await cdp.send('Network.enable');
    cdp.on('Network.eventSourceMessageReceived', e => appendFileSync(join(TMP, 'sse.log'), `${new Date().toISOString()} ${e.eventName} ${e.eventId} ${e.data.slice(0, 300)}\n`));
    cdp.on('Network.requestWillBeSent', e => { if (e.request.url.includes('stream')) appendFileSync(join(TMP, 'sse.log'), `${new Date().toISOString()} REQ ${e.request.url.replace(/ticket=[^&]+/, 'ticket=…')}\n`); });
  }
  const resp = await dash.goto(`${BASE}/`);
  eq('GET / in the browser: 200 with the CSP', [200, CSP], [resp.status(), resp.headers()['content-security-policy']]);
  await expectWithin('the sign-in form is shown', 2000, () => dash.isVisible('#signin-form'));
  eq('title before sign-in', 'herenow — sign in', await dash.title());

  await signIn(dash, TOKEN);
  let options;
  await expectWithin('signed in: the widget picker lists the widgets', 3000, async () => {
    options = await dash.$$eval('#widget option', os => os.map(o => o.value));
    return [WID, OWID, CWID].every(id => options.includes(id));
  }, () => JSON.stringify(options));
  eq('the token is kept in sessionStorage only (not "remembered")', [TOKEN, null],
    await dash.evaluate(() => [sessionStorage.getItem('herenow.token'), localStorage.getItem('herenow.token')]));
  if ((await dash.inputValue('#widget')) != WID) await dash.selectOption('#widget', WID);
  await expectWithin('connection mode "live" (SSE with a ticket)', 3000, async () => (await modeText(dash)) == 'live',
    async () => `mode: ${await modeText(dash)}`);
  check('the stream was opened with a ticket (?ticket=hnt_…), not the token',
    seen.urls.some(u => u.url.startsWith(`${API}/widgets/${WID}/active-visitors/stream?ticket=hnt_`)),
    seen.urls.filter(u => u.url.includes('stream')));
  await expectWithin('the title names the widget', 1000, async () => /^\(\d+\) herenow — Dashboard shop$/.test(await dash.title()),
    async () => dash.title());

  // ---------------- SSE blocked: a second dashboard that polls ----------------
  // It runs beside the main one (the 5 s polling period would otherwise add
  // up): the stream is aborted, so it must poll, and still show visitor A.
  const pctx = await launch('polling', { viewport: { width: 1280, height: 860 } });
  await watch(pctx, 'polling');
  let blocked = 0;
  await pctx.route(/\/active-visitors\/stream\?/, r => { blocked++; return r.abort(); });
  const pp = await newPage(pctx);
  await pp.goto(`${BASE}/#widget=${WID}`);
  await signIn(pp, TOKEN);
  await expectWithin('SSE blocked: the dashboard falls back to polling', 3000, async () => (await modeText(pp)) == 'polling',
    async () => `mode: ${await modeText(pp)}, stream requests blocked: ${blocked}`);
  check(`SSE blocked: the stream was tried (${blocked} blocked)`, blocked >= 1);

  // ---------------- UDP visitors ----------------
  const A = 'udpAlice0001', B = 'udpBruno0001', C = 'udpChiyo0001';
  let t0 = Date.now();
  send(A, 'pv', '--seq', '1', '--url', 'https://shop.example/pricing?plan=pro', '--title', 'Pricing — Shop',
    '--referrer', 'https://www.google.com/', '--ua', UA.chrome, '--ip', '198.51.100.7', '--lang', 'en-US');
  // (awaited further down: the polling dashboard has up to 6 s)
  const polled = rowWithin('SSE blocked: a new visitor still shows within 6 s (polling every 5 s)', pp, A,
    r => r.url.startsWith('https://shop.example/'), { t0, ms: 6000 });
  const a = await rowWithin('UDP: the visitor appears in the list within 1 s', dash, A,
    r => r.url == 'https://shop.example/pricing?plan=pro', { t0 });
  if (a) {
    eq('UDP: row shows title, status, country with flag, city, masked IP, device, referrer host, pages, chat',
      ['Pricing — Shop', 'active', true, true, true, 'Chrome 131 · Windows 10 · desktop', 'www.google.com', '1', '💬 No messages yet'],
      [a.title, a.status, a.loc.includes('\u{1F1FA}\u{1F1F8} US'), a.loc.includes('San Francisco'), a.loc.includes('198.51.100.0'),
        a.device, a.ref, a.pages, a.chat]);
    eq('UDP: the status has text for screen readers', 'active', a.statusText);
  }
  t0 = Date.now();
  send(A, 'pv', '--seq', '2', '--url', 'https://shop.example/checkout', '--title', 'Checkout — Shop', '--engaged', '4000',
    '--ua', UA.chrome, '--ip', '198.51.100.7');
  await rowWithin('UDP: the current page changes within 1 s', dash, A,
    r => r.url == 'https://shop.example/checkout' && r.title == 'Checkout — Shop' && r.pages == '2', { t0 });
  // identify with markup in the name: shown as text, never as an element
  const EVIL = 'Grace <img src=x onerror="window.__xss=1"> Hopper';
  t0 = Date.now();
  send(A, 'id', '--seq', '3', '--visitor-name', EVIL, '--email', 'grace@example.org', '--ua', UA.chrome, '--ip', '198.51.100.7');
  await rowWithin('UDP: identify shows the name within 1 s', dash, A, r => r.name == EVIL, { t0 });
  eq('the visitor-sent markup stayed text (no <img> in the list, no script ran)', [0, false],
    await dash.evaluate(() => [document.querySelectorAll('#rows img').length, !!window.__xss]));
  send(A, 'ev', '--seq', '4', '--event', 'plan_chosen', '--prop', 'plan=pro', '--prop', 'seats=3', '--ua', UA.chrome, '--ip', '198.51.100.7');
  // Each herenowctl send is its own UDP socket, so two beacons sent a moment
  // apart may be handled by two collector threads in either order: a
  // session's next beacon goes out once the previous one is seen (browsers
  // space them much further apart).
  t0 = Date.now();
  send(B, 'pv', '--seq', '1', '--url', 'https://shop.example/', '--title', 'Home — Shop', '--ua', UA.iphone, '--ip', '203.0.113.50', '--lang', 'de-DE');
  send(C, 'pv', '--seq', '1', '--url', 'https://shop.example/blog/launch', '--title', 'We launched — Blog',
    '--referrer', 'https://news.ycombinator.com/', '--ua', UA.firefox, '--ip', '2001:db8::5', '--lang', 'ja');
  await rowWithin('UDP: two more visitors (an iPhone, Firefox over IPv6) appear within 1 s', dash, B, () => true, { t0 });
  await rowWithin('UDP: … both of them', dash, C, () => true, { t0 });
  t0 = Date.now();
  send(B, 'ev', '--seq', '2', '--event', 'chat_opened', '--prop', 'source=button', '--ua', UA.iphone, '--ip', '203.0.113.50');
  await rowWithin('UDP: chat shows within 1 s of the visitor opening it', dash, B, r => r.chat == '💬 Chat opened', { t0 });
  t0 = Date.now();
  send(C, 'hide', '--seq', '2', '--engaged', '9000', '--ua', UA.firefox, '--ip', '2001:db8::5');
  await rowWithin('UDP: hide makes the visitor idle within 1 s', dash, C, r => r.status == 'idle', { t0 });

  // A session that ends and comes straight back (a link to the next page: the
  // old page's end, the new page's page view) can reach the dashboard as a
  // leave and an enter handled before it draws again. The row it keeps must
  // show the new page, not the old one. The page is kept busy (its main
  // thread stalled) while the server sees both, so that both arrive at once.
  const E = 'udpEmil00001';
  const inApi = async () => !!(await api(`/widgets/${WID}/active-visitors?limit=1000`)).json?.visitors?.some(v => v.session_id == E);
  send(E, 'pv', '--seq', '1', '--url', 'https://shop.example/first', '--title', 'First — Shop', '--ua', UA.chrome, '--ip', '198.51.100.9');
  await rowWithin('UDP: a visitor about to leave and come back appears', dash, E, r => r.url == 'https://shop.example/first');
  await dash.evaluate(() => { setTimeout(() => { const end = performance.now() + 1500; while (performance.now() < end); }, 0); });
  send(E, 'end', '--seq', '2', '--ua', UA.chrome, '--ip', '198.51.100.9');
  const gone = await waitFor(async () => !(await inApi()), 1000);
  send(E, 'pv', '--seq', '3', '--url', 'https://shop.example/second', '--title', 'Second — Shop', '--ua', UA.chrome, '--ip', '198.51.100.9');
  const back = await waitFor(inApi, 1000);
  check('… its end and its next page view both reached the server while the page was busy', gone && back);
  t0 = Date.now();
  await rowWithin('UDP: leave and enter handled in one frame: the row shows the new page', dash, E,
    r => r.url == 'https://shop.example/second' && r.title == 'Second — Shop', { t0, ms: 2500 });
  send(E, 'end', '--seq', '4', '--ua', UA.chrome, '--ip', '198.51.100.9');     // the lists below are A, B, C and the browser's
  await expectWithin('… and it leaves again', 2000, async () => !(await row(dash, E)));

  // ---------------- a real browser on the test site ----------------
  const vctx = await launch('visitor', { real: true, locale: 'en-US', extraHTTPHeaders: { 'X-Forwarded-For': '203.0.113.77' } });
  vctx.on('request', r => seen.urls.push({ name: 'visitor', url: r.url(), method: r.method(), t: Date.now() }));
  const vp = await newPage(vctx);
  await vp.goto(`${S}/`);
  const sid = await sessionOf(vp);
  check('browser visitor: the widget made a session id', /^[A-Za-z0-9_-]{16,64}$/.test(sid), sid);
  const bv = await rowWithin('browser visitor: appears in the list within 1 s', dash, sid, r => r.url == `${S}/`);
  if (bv) {
    check(`browser visitor: title, Germany, Berlin, Linux desktop (${bv.loc} / ${bv.device})`,
      bv.title == 'Home — Test shop' && bv.loc.includes('DE') && bv.loc.includes('Berlin') && /Linux · desktop$/.test(bv.device));
  }
  // from the moment the new page commits (the click itself is the browser's business)
  await vp.click('#to-about');
  await vp.waitForURL(`${S}/about.html`, { waitUntil: 'commit' });
  t0 = Date.now();
  await rowWithin('browser visitor: the current page follows a navigation within 1 s', dash, sid,
    r => r.url == `${S}/about.html` && r.title == 'About us — Test shop' && r.pages == '2', { t0 });
  await vp.evaluate(() => herenow('event', 'signup', { plan: 'pro', seats: 3, trial: true }));
  t0 = Date.now();
  await vp.evaluate(() => herenow('identify', { name: 'Ada Lovelace', email: 'ada@example.org' }));
  await rowWithin('browser visitor: identify shows name and email within 1 s', dash, sid,
    r => r.name == 'Ada Lovelace' && r.visitor.includes('ada@example.org'), { t0 });
  t0 = Date.now();
  await setHidden(vp, true);
  await rowWithin('browser visitor: idle within 1 s of the page being hidden', dash, sid, r => r.status == 'idle', { t0 });
  t0 = Date.now();
  await setHidden(vp, false);
  await rowWithin('browser visitor: active again within 1 s of the page being shown', dash, sid, r => r.status == 'active', { t0 });

  // ---------------- count, ticking, filters, sorting ----------------
  let counts;
  await expectWithin("the count in the title is the API's total", 2000, async () => {
    const m = /^\((\d+)\) herenow — Dashboard shop$/.exec(await dash.title());
    const total = (await api(`/widgets/${WID}/active-visitors?limit=1`)).json.total;
    counts = [m && +m[1], total];
    return m && +m[1] == total && total >= 4;
  }, () => JSON.stringify(counts));
  const live = await dash.$eval('#count', el => [el.getAttribute('aria-live'), el.textContent]);
  check(`the count is also in an aria-live region ("${live[1]}")`, live[0] == 'polite' && live[1].startsWith(`${counts[1]} visitors`), live);

  const apiA = (await api(`/widgets/${WID}/active-visitors?limit=100`)).json.visitors.find(v => v.session_id == A);
  const t1 = (await row(dash, A)).time;
  const ticked = await waitFor(async () => (await row(dash, A)).time != t1 && (await row(dash, A)).time, 2500);
  check(`time on site ticks every second (${t1} → ${ticked})`, ticked && clockSeconds(ticked) > clockSeconds(t1), ticked);
  const expected = (Date.now() - Date.parse(apiA.started)) / 1000;
  const shown = clockSeconds((await row(dash, A)).time);
  check(`time on site follows the API's started (shows ${shown} s, expected ${expected.toFixed(1)} s)`,
    Math.abs(shown - expected) <= 2, { shown, expected });

  await dash.selectOption('#f-country', 'US');
  await expectWithin('filter by country: US shows only the US visitor', 1000, async () => {
    const ids = await rowIds(dash);
    return ids.length == 1 && ids[0] == A;
  }, async () => JSON.stringify(await rowIds(dash)));
  await dash.selectOption('#f-country', '');
  await dash.selectOption('#f-status', 'idle');
  await expectWithin('filter by status: idle shows only idle visitors', 1000, async () => {
    const st = await dash.$$eval('#rows tr', trs => trs.map(tr => tr.dataset.status));
    return st.length >= 1 && st.every(s => s == 'idle') && (await rowIds(dash)).includes(C);
  });
  await dash.selectOption('#f-status', '');
  await dash.fill('#f-page', 'about');
  await expectWithin('filter by page: "about" shows only the visitor on /about.html', 1000, async () => {
    const ids = await rowIds(dash);
    return ids.length == 1 && ids[0] == sid;
  }, async () => JSON.stringify(await rowIds(dash)));
  await dash.fill('#f-page', '');
  await dash.click('#list th button[data-sort="pages"]');
  await expectWithin('sort by pages: the column header says so and the rows follow', 1000, async () => {
    const sort = await dash.getAttribute('#list th.c-pages', 'aria-sort');
    const pages = await dash.$$eval('#rows tr .c-pages', tds => tds.map(td => +td.textContent));
    return sort == 'descending' && pages.length >= 4 && pages.every((p, i) => !i || pages[i - 1] >= p);
  });
  await dash.click('#list th button[data-sort="last_seen"]');
  await expectWithin('sort back to last seen (most recent first)', 1000,
    async () => (await dash.getAttribute('#list th.c-seen', 'aria-sort')) == 'descending');
  await shot(dash, 'live-list.png');
  ok(`screenshot: ${ART}/live-list.png`);

  await polled;
  await expectWithin('polling: SSE is retried now and then (a second attempt)', 7000, () => blocked >= 2, () => `${blocked} attempts`);

  // ---------------- details ----------------
  await dash.click(`#rows tr[data-sid="${sid}"]`);
  await expectWithin('details: a click on the row opens the dialog', 1000, () => dialogOpen(dash));
  let tl;
  await expectWithin('details: the timeline shows both page views, the event, identify, hide and show (from PostgreSQL)', 10000, async () => {
    tl = await dash.evaluate(() => ({
      title: document.querySelector('#d-title').textContent,
      pages: [...document.querySelectorAll('#d-body .tl-pv')].map(li => li.querySelector('.url').textContent),
      events: [...document.querySelectorAll('#d-body .tl-ev')].map(li => ({
        type: li.dataset.type,
        name: li.dataset.name,
        props: Object.fromEntries([...li.querySelectorAll('.props > div')].map(d => [d.querySelector('dt').textContent, d.querySelector('dd').textContent])),
      })),
    }));
    const types = tl.events.map(e => e.type);
    return tl.pages.length == 2 && ['ev', 'id', 'hide', 'show'].every(t => types.includes(t));
  }, () => JSON.stringify(tl));
  if (tl) {
    eq('details: the page views in order', [`${S}/`, `${S}/about.html`], tl.pages);
    eq("details: the custom event with its props", { type: 'ev', name: 'signup', props: { plan: 'pro', seats: '3', trial: 'true' } },
      tl.events.find(e => e.type == 'ev'));
    eq('details: identify with name and email', { name: 'Ada Lovelace', email: 'ada@example.org' },
      (tl.events.find(e => e.type == 'id') || {}).props);
    eq('details: the title is the visitor\'s name', 'Ada Lovelace', tl.title);
  }
  const time1 = await dash.$$eval('#d-body .tl-pv .tl-dur', els => els.map(e => e.textContent));
  check(`details: time on each page (${time1.join(' | ')})`, /^\d+ s on this page$/.test(time1[0]) && time1[1] == 'last page', time1);
  eq('details: a first visit has no earlier sessions', 'Earlier sessionsNone: this is the first session of this visitor.',
    await dash.textContent('#d-body .d-earlier'));
  await shot(dash, 'details.png');
  ok(`screenshot: ${ART}/details.png`);
  await dash.keyboard.press('Escape');
  await expectWithin('details: Escape closes the dialog', 1000, async () => !(await dialogOpen(dash)));

  // ---------------- keyboard ----------------
  await dash.click('#count');        // a neutral spot: the focus starts from the top again
  let tabs = 0, focused = null;
  while (tabs < 40) {
    await dash.keyboard.press('Tab');
    tabs++;
    focused = await dash.evaluate(() => document.activeElement.matches('#rows tr') ? document.activeElement.dataset.sid : null);
    if (focused) break;
  }
  check(`keyboard: Tab reaches a row of the list (${tabs} presses)`, focused, tabs);
  if (focused) {
    const ring = await dash.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    check(`keyboard: the focused row has a visible focus ring (outline ${ring})`, ring != 'none', ring);
    await dash.keyboard.press('Enter');
    await expectWithin('keyboard: Enter opens the details of that row', 1000, async () =>
      (await dialogOpen(dash)) && (await waitFor(() => dash.evaluate(() => !!document.querySelector('#d-body .facts')), 3000)));
    check('keyboard: the details are of the focused row', (await dash.textContent('#d-body .facts')).includes(focused));
    await dash.keyboard.press('Escape');
    await expectWithin('keyboard: Escape closes it and the focus is back on the row', 1000, async () =>
      !(await dialogOpen(dash)) && (await dash.evaluate(() => document.activeElement.dataset.sid)) == focused);
  }

  // ---------------- earlier sessions ----------------
  // The same visitor (a persistent vid) twice: the second session's details
  // list the first one.
  const E1 = 'udpEarly0001', E2 = 'udpEarly0002';
  send(E1, 'pv', '--seq', '1', '--url', 'https://shop.example/first', '--title', 'First visit', '--vid', 'customer-77', '--ua', UA.firefox, '--ip', '192.0.2.20');
  await waitFor(() => row(dash, E1), 2000);
  send(E1, 'end', '--seq', '2', '--engaged', '3000', '--vid', 'customer-77', '--ua', UA.firefox, '--ip', '192.0.2.20');
  await waitFor(async () => (await api(`/sessions/${E1}?widget=${WID}`)).json?.source == 'postgresql', 5000);
  send(E2, 'pv', '--seq', '1', '--url', 'https://shop.example/again', '--title', 'Back again', '--vid', 'customer-77', '--ua', UA.firefox, '--ip', '192.0.2.20');
  await rowWithin('earlier sessions: the returning visitor is listed', dash, E2, () => true);
  await dash.click(`#rows tr[data-sid="${E2}"]`);
  let early;
  await expectWithin('earlier sessions: the details of the second visit list the first one', 8000, async () => {
    early = await dash.$$eval('#d-body .d-earlier li', lis => lis.map(li => [li.querySelector('button').textContent, li.querySelector('.url').textContent]));
    return early.length == 1 && early;
  }, () => JSON.stringify(early));
  if (early) eq('earlier sessions: its id and landing page', [E1, 'https://shop.example/first'], early[0]);
  await dash.click('#d-body .d-earlier li button');
  await expectWithin('earlier sessions: opening it shows that session', 5000, async () =>
    (await dash.textContent('#d-body .facts')).includes(E1));
  await dash.keyboard.press('Escape');
  await expectWithin('earlier sessions: Escape closes the dialog', 1000, async () => !(await dialogOpen(dash)));

  // ---------------- deactivate ----------------
  const D = 'udpDeact0001';
  send(D, 'pv', '--seq', '1', '--url', 'https://shop.example/stale', '--title', 'Stale tab', '--ua', UA.chrome, '--ip', '198.51.100.9');
  await rowWithin('deactivate: a stale visitor is listed', dash, D, () => true);
  await dash.click(`#rows tr[data-sid="${D}"]`);
  await dash.waitForSelector('#d-deactivate', { timeout: 5000 }).catch(() => null);
  let asked = null;
  dash.once('dialog', d => { asked = d.message(); d.accept(); });
  t0 = Date.now();
  await dash.click('#d-deactivate').catch(e => fail('deactivate: the button is there', e.message));
  check('deactivate: asks for confirmation first', asked && asked.includes(D), asked);
  await expectWithin('deactivate: the details say so', 2000, async () => (await dash.textContent('#d-msg')) == 'Deactivated.');
  await dash.keyboard.press('Escape');
  await expectBy('deactivate: the row leaves the list within 1 s', t0, LIVE, async () => !(await row(dash, D)));
  check('deactivate: the API no longer lists the session',
    !(await api(`/widgets/${WID}/active-visitors?limit=1000`)).json.visitors.some(v => v.session_id == D));

  // ---------------- phone width ----------------
  await dash.setViewportSize({ width: 390, height: 844 });
  await expectWithin('phone width (390 px): the rows are cards, the table header is gone', 2000, () => dash.evaluate(() =>
    getComputedStyle(document.querySelector('#rows tr')).display == 'grid' &&
    getComputedStyle(document.querySelector('#list th.c-page')).display == 'none'));
  eq('phone width: no horizontal scroll on the live list', true,
    await dash.evaluate(() => document.scrollingElement.scrollWidth <= 390));
  await shot(dash, 'phone-live.png', { fullPage: true });
  ok(`screenshot: ${ART}/phone-live.png`);
  await dash.setViewportSize({ width: 1280, height: 860 });

  // ---------------- leaving ----------------
  t0 = Date.now();
  await vp.close({ runBeforeUnload: true });
  await expectBy('browser visitor: closing the page (end) takes it off the list within 1 s', t0, LIVE, async () => !(await row(dash, sid)));
  await vctx.close();
  t0 = Date.now();
  send(A, 'end', '--seq', '5', '--engaged', '6000', '--ua', UA.chrome, '--ip', '198.51.100.7');
  await expectBy('UDP: end takes the visitor off the list within 1 s', t0, LIVE, async () => !(await row(dash, A)));
  await expectWithin("after the leaves: the count in the title is still the API's total", 2000, async () => {
    const m = /^\((\d+)\)/.exec(await dash.title());
    return m && +m[1] == (await api(`/widgets/${WID}/active-visitors?limit=1`)).json.total;
  });

  // ---------------- statistics ----------------
  await dash.click('#tab-stats');
  const KEYS = ['visitors', 'sessions', 'page_views', 'avg_time_on_site_s', 'avg_pages', 'bounce_rate', 'chat_engagement_rate'];
  const figures = () => dash.$$eval('#figures > div', ds => Object.fromEntries(ds.map(d =>
    [d.dataset.key, { value: d.querySelector('dd').dataset.value, text: d.querySelector('dd').textContent }])));
  const statsByRange = {};
  for (const [range, interval, seeded] of [['24h', 'hour', { sessions: 21, page_views: 52 }], ['30d', 'day', { sessions: 90, page_views: 234 }]]) {
    let panel, want;
    // The drain may still be writing the test's traffic: reload the panel until
    // it and the API agree (each attempt compares one panel with one answer).
    await expectWithin(`statistics ${range}: the panel shows what visitor-stats answers`, 15000, async () => {
      await dash.evaluate(() => { delete document.querySelector('#stats').dataset.loaded; });
      await dash.click(range == '24h' ? '#stats-refresh' : `[data-range="${range}"]`);
      await dash.waitForSelector(`#stats[data-loaded="${range}"]`, { timeout: 5000 });
      panel = await figures();
      want = (await api(`/widgets/${WID}/visitor-stats?from=${range}`)).json;
      return KEYS.every(k => panel[k].value === String(want[k]));
    }, () => JSON.stringify({ panel, want }));
    if (!want) continue;
    statsByRange[range] = want;
    check(`statistics ${range}: the seeded history is counted (${want.sessions} sessions ≥ ${seeded.sessions}, ${want.page_views} page views ≥ ${seeded.page_views})`,
      want.sessions >= seeded.sessions && want.page_views >= seeded.page_views, want);
    eq(`statistics ${range}: the figures as text`,
      [String(want.sessions), String(want.page_views), `${(want.bounce_rate * 100).toFixed(1)}%`,
        `${(want.chat_engagement_rate * 100).toFixed(1)}%`, want.avg_pages.toFixed(2)],
      [panel.sessions.text.replace(/,/g, ''), panel.page_views.text.replace(/,/g, ''), panel.bounce_rate.text,
        panel.chat_engagement_rate.text, panel.avg_pages.text]);
    const series = (await api(`/widgets/${WID}/timeseries?from=${range}&interval=${interval}`)).json;
    const chart = await dash.evaluate(() => {
      const bars = [...document.querySelectorAll('#chart rect.bar')];
      return { bars: bars.length, times: bars.map(b => b.dataset.time), values: bars.map(b => +b.dataset.value),
        tall: bars.filter(b => +b.getAttribute('height') > 0).length, line: !!document.querySelector('#chart path.line') };
    });
    eq(`statistics ${range}: the chart has one bar per ${interval} of the timeseries (${series.buckets.length}) and the visitors line`,
      [series.buckets.length, true], [chart.bars, chart.line]);
    eq(`statistics ${range}: the bars are the buckets' times and page views`,
      series.buckets.map(b => [b.time, b.page_views]), chart.times.map((t, i) => [t, chart.values[i]]));
    check(`statistics ${range}: some bars are drawn with a height (${chart.tall})`, chart.tall >= 2, chart);
    for (const by of ['page', 'country']) {
      const bd = (await api(`/widgets/${WID}/breakdown?by=${by}&from=${range}&limit=10`)).json;
      const table = await dash.$$eval(`#breakdowns section[data-by="${by}"] tbody tr`, trs => trs.map(tr =>
        [tr.querySelector('.b-value')?.getAttribute('title'), +(tr.querySelector('.b-count')?.textContent || '').replace(/,/g, '')]));
      eq(`statistics ${range}: the top ${by} table is the breakdown (${bd.results.length} values)`,
        bd.results.map(r => [r.value, r.count]), table);
    }
  }
  if (statsByRange['24h'] && statsByRange['30d']) {
    check('statistics: 30 d holds more than 24 h (the seeded days)', statsByRange['30d'].sessions > statsByRange['24h'].sessions);
  }
  await shot(dash, 'stats.png', { fullPage: true });
  ok(`screenshot: ${ART}/stats.png`);

  // ---------------- CSV export ----------------
  await waitFor(async () => ((await api(`/sessions/${A}?widget=${WID}`)).json?.pages || []).length == 2, 10000);
  const csv = {};
  for (const what of ['sessions', 'pageviews']) {
    try {
      const [dl] = await Promise.all([dash.waitForEvent('download', { timeout: 10000 }), dash.click(`[data-export="${what}"]`)]);
      const name = dl.suggestedFilename();
      check(`CSV ${what}: a download named by the server (${name})`, new RegExp(`^herenow-${WID}-${what}-.*\\.csv$`).test(name), name);
      const file = join(TMP, name);
      await dl.saveAs(file);
      csv[what] = readFileSync(file, 'utf8').trim().split('\n');
      ok(`CSV ${what}: the file was downloaded (${csv[what].length} lines)`);
    } catch (e) {
      fail(`CSV ${what}: a download`, e.message);
      csv[what] = [];
    }
  }
  const col = (lines, name) => {
    const head = (lines[0] || '').split(',');
    const i = head.indexOf(name);
    return lines.slice(1).map(l => l.split(',')[i]);
  };
  check('CSV sessions: the header row', (csv.sessions[0] || '').startsWith('session_id,visitor_id,started'), csv.sessions[0]);
  const csvSessions = col(csv.sessions, 'session_id');
  eq('CSV sessions: the sessions sent (UDP and the browser) are rows', [A, B, C, D, sid].map(s => [s, true]),
    [A, B, C, D, sid].map(s => [s, csvSessions.includes(s)]));
  const pv = csv.pageviews.slice(1).map(l => l.split(',')).filter(f => f[1] == sid || f[1] == A).map(f => `${f[1]} ${f[3]}`);
  eq('CSV pageviews: the page views of the browser visitor and of the UDP visitor, in order',
    [`${sid} ${S}/`, `${sid} ${S}/about.html`, `${A} https://shop.example/pricing?plan=pro`, `${A} https://shop.example/checkout`].sort(),
    pv.sort());

  // ---------------- stream renewals ----------------
  // The api ends each stream after HERENOW_SSE_MAX_LIFETIME_S (6 s here) with
  // `bye`: everything above went through renewals, each with a new ticket and
  // the last event id (so the server can replay instead of a new snapshot).
  const streams = seen.urls.filter(u => u.name == 'dashboard' && u.url.startsWith(`${API}/widgets/${WID}/active-visitors/stream?`))
    .map(u => u.url);
  check(`the stream was renewed after each bye, with a new ticket and last_event_id (${streams.length} streams, mode ${await modeText(dash)})`,
    streams.length >= 2 && new Set(streams.map(u => new URL(u).searchParams.get('ticket'))).size == streams.length &&
    streams.slice(1).every(u => new URL(u).searchParams.get('last_event_id')) && (await modeText(dash)) == 'live',
    streams.map(u => u.replace(/ticket=[^&]+/, 'ticket=…')));

  // ---------------- 500 rows at most ----------------
  execFileSync(env('HN_LOADGEN'), ['--to', UDP, '--widgets', CKEY, '--sessions', '1500', '--count', '4000', '--cold'], { stdio: 'ignore' });
  await dash.click('#tab-live');
  await dash.selectOption('#widget', CWID);
  let crowd;
  await expectWithin('crowd: with more than 500 live visitors, 500 rows and "showing 500 of N"', 5000, async () => {
    const total = (await api(`/widgets/${CWID}/active-visitors?limit=1`)).json.total;
    crowd = await dash.evaluate(() => ({
      rows: document.querySelectorAll('#rows tr').length, cap: document.querySelector('#cap').textContent,
      capShown: !document.querySelector('#cap').hidden, title: document.title,
    }));
    crowd.total = total;
    return total > 500 && crowd.rows == 500 && crowd.capShown &&
      crowd.cap == `showing 500 of ${total.toLocaleString('en')} — narrow with the filters` && crowd.title == `(${total}) herenow — Crowd`;
  }, () => JSON.stringify(crowd));
  eq('the widget choice is remembered on this device', CWID, await dash.evaluate(() => localStorage.getItem('herenow.widget')));
  await dash.goto(`${BASE}/`);
  await expectWithin('reload: still signed in (sessionStorage) with the last widget', 3000, async () =>
    (await dash.isVisible('#live')) && (await dash.inputValue('#widget')) == CWID);
  eq('connection mode after the reload', 'live', await waitFor(async () => (await modeText(dash)) == 'live' && 'live', 3000));
  await dash.selectOption('#widget', WID);

  // ---------------- the API unreachable ----------------
  await pctx.route(/\/api\/visitor-tracking\//, r => r.abort());
  await expectWithin('the API unreachable: the mode says "offline" at the next poll', 6000, async () => (await modeText(pp)) == 'offline');
  await pctx.close();

  // ---------------- wrong token, another widget's token ----------------
  const octx = await launch('other', { viewport: { width: 1280, height: 860 } });
  await watch(octx, 'other');
  const op = await newPage(octx);
  await op.goto(`${BASE}/`);
  await signIn(op, 'hn_notarealtoken_0000000000000000000000000000000');
  await expectWithin('a wrong token is refused at sign-in: "invalid or revoked token"', 3000, async () =>
    (await op.isVisible('#signin-error')) && (await op.textContent('#signin-error')) == 'invalid or revoked token');
  eq('a wrong token: still on the sign-in form, nothing stored', [true, null, null], [await op.isVisible('#signin-form'),
    ...await op.evaluate(() => [sessionStorage.getItem('herenow.token'), localStorage.getItem('herenow.token')])]);

  await signIn(op, OTHER_TOKEN, { remember: true });
  let oopts;
  await expectWithin("another widget's token: the picker lists that widget only", 3000, async () => {
    oopts = await op.$$eval('#widget option', os => os.map(o => o.value));
    return oopts.length == 1 && oopts[0] == OWID;
  }, () => JSON.stringify(oopts));
  eq('"remember on this device": the token is in localStorage, not sessionStorage', [null, OTHER_TOKEN],
    await op.evaluate(() => [sessionStorage.getItem('herenow.token'), localStorage.getItem('herenow.token')]));
  await op.goto('about:blank');
  await op.goto(`${BASE}/#widget=${WID}`);
  await expectWithin("another widget's token on this widget: \"this token may not see that widget\", no visitor shown", 3000, async () =>
    (await op.isVisible('#banner')) && (await op.textContent('#banner-text')) == 'this token may not see that widget' &&
    (await rowIds(op)).length == 0, async () => `banner: ${await op.textContent('#banner-text')}, rows: ${(await rowIds(op)).length}`);
  await op.click('#signout');
  await expectWithin('sign out: back to the sign-in form, the token gone from both storages', 2000, async () =>
    (await op.isVisible('#signin-form')) && (await op.evaluate(() => !sessionStorage.getItem('herenow.token') && !localStorage.getItem('herenow.token'))));

  // a token revoked while it is in use: the next request is a 401 (the open
  // stream ends with bye "revoked", its renewal is refused), back to sign-in
  await signIn(op, REVOKE_TOKEN);
  await expectWithin('a token about to be revoked: signed in, live', 3000, async () => (await modeText(op)) == 'live');
  execFileSync(CTL, ['token', 'revoke', env('HN_REVOKE_TOKEN_ID')], { stdio: 'ignore' });
  await expectWithin('revoked while signed in: back to sign-in with "invalid or revoked token", the token forgotten', 8000, async () =>
    (await op.isVisible('#signin-form')) && (await op.textContent('#signin-error')) == 'invalid or revoked token' &&
    (await op.evaluate(() => !sessionStorage.getItem('herenow.token') && !localStorage.getItem('herenow.token'))));
  await octx.close();

  // the same refusals at the API, as the dashboard relies on them
  eq("another widget's token: GET this widget's active-visitors is 403", 403,
    (await api(`/widgets/${WID}/active-visitors`, { token: OTHER_TOKEN })).status);
  eq("another widget's token: POST this widget's stream/ticket is 403", 403,
    (await api(`/widgets/${WID}/active-visitors/stream/ticket`, { token: OTHER_TOKEN, method: 'POST' })).status);
  const own = await api(`/widgets/${OWID}/active-visitors/stream/ticket`, { token: OTHER_TOKEN, method: 'POST' });
  eq("another widget's token: a ticket for its own widget", [200, true], [own.status, /^hnt_/.test(own.json?.ticket || '')]);
  if (own.json?.ticket) {
    const ac = new AbortController();
    const r = await fetch(`${API}/widgets/${WID}/active-visitors/stream?ticket=${encodeURIComponent(own.json.ticket)}`, { signal: ac.signal });
    eq("that ticket on this widget's stream is 401", 401, r.status);
    ac.abort();
  }

  // ---------------- statistics at a glance ----------------
  // (last: it switches widgets and sizes, which the checks above need not meet)
  await statsAtAGlance(dash);

  // ---------------- what the pages did ----------------
  eq('dashboard: no console error or warning during the run', [], seen.console.filter(m => m.name == 'dashboard'));
  // The refusals (401, 403) and the blocked stream show as network errors of
  // the browser itself; nothing else may.
  eq('other pages: no console message but the refused or blocked requests', [],
    seen.console.filter(m => m.name != 'dashboard' && !/^Failed to load resource: (the server responded with a status of (401|403)|net::ERR_FAILED)/.test(m.text)));
  eq('no uncaught error in any page', [], seen.pageErrors);
  eq('no Content-Security-Policy violation in any page', [], seen.csp);
  check(`requests recorded (${seen.urls.length})`, seen.urls.length > 20);
  eq('the token is in no request URL (EventSource, API, export)', [],
    seen.urls.map(u => u.url).filter(u => [TOKEN, OTHER_TOKEN, REVOKE_TOKEN].some(t => u.includes(t)) || /token=|bearer/i.test(u)));

  site.close();
  await dctx.close();
});
