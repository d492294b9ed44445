// tests/browser/e2e.mjs: the widget end to end — Debian's headless Chromium
// visits the test site, whose pages embed the real collector's /h.js; what the
// visitor does is asserted through the real API (docs/API.md) and the
// collector's /metrics. tests/integration/test_browser.sh starts Redis,
// PostgreSQL, the collector and the api, runs this, and then checks
// PostgreSQL, Redis and the logs with the session ids written to
// $HN_TMP/e2e.json.
//
// Environment (all set by test_browser.sh):
//   HN_TMP          temp dir (Chromium profiles, e2e.json)
//   HN_COLLECTOR    http://127.0.0.1:<port> (HTTP ingress, /h.js)
//   HN_ADMIN        http://127.0.0.1:<port> (collector /metrics)
//   HN_API_URL      http://127.0.0.1:<port> (herenow-api)
//   HN_TOKEN        an all-widget API token
//   HN_WIDGET_ID, HN_WIDGET_KEY
//   HN_SITE_PORT, HN_OTHER_PORT   free ports for the test site and "another site"
//
// One line per assertion ("ok - …" / "not ok - …"); exit 1 on any failure.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ok, fail, check, eq, waitFor, expectWithin, guard, launch, newPage, setHidden, startSite, headlessUA,
} from './lib.mjs';

const env = name => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const COLLECTOR = env('HN_COLLECTOR');
const ADMIN = env('HN_ADMIN');
const API = `${env('HN_API_URL')}/api/visitor-tracking`;
const TOKEN = env('HN_TOKEN');
const WID = env('HN_WIDGET_ID');
const KEY = env('HN_WIDGET_KEY');

const CLIENT_IP = '203.0.113.77';   // the test MMDB maps 203.0.113.0/24 to DE / Berlin
const LIVE = 1000;                  // ms: a beacon shows in active-visitors within this

// ---- API and metrics ----------------------------------------------------------------

async function api(path) {
  const r = await fetch(API + path, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const body = await r.text();
  let json = null;
  try { json = JSON.parse(body); } catch { /* not JSON */ }
  return { status: r.status, json, body };
}

// The visitor of session sid in active-visitors, or undefined.
async function live(sid) {
  const r = await api(`/widgets/${WID}/active-visitors?limit=1000`);
  if (r.status != 200) throw new Error(`active-visitors: ${r.status} ${r.body}`);
  return r.json.visitors.find(v => v.session_id == sid);
}

async function liveIds() {
  const r = await api(`/widgets/${WID}/active-visitors?limit=1000`);
  return r.json.visitors.map(v => v.session_id);
}

// herenow_beacons_dropped_total{transport=…,reason=…} of the collector
async function dropped(reason, transport = 'http') {
  const text = await (await fetch(`${ADMIN}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^herenow_beacons_dropped_total\{([^}]*)\} (\d+)$/gm)) {
    if (m[1].includes(`transport="${transport}"`) && m[1].includes(`reason="${reason}"`)) n += +m[2];
  }
  return n;
}

// Init scripts that take the first transports away from the widget.
const NO_SENDBEACON = () => { delete Navigator.prototype.sendBeacon; };

const sessionOf = page => page.evaluate(() => (sessionStorage.getItem('herenow') || '').split(' ')[0]);

// liveWithin(desc, sid, pred): the visitor's snapshot satisfies pred within LIVE ms.
async function liveWithin(desc, sid, pred, ms = LIVE) {
  let last;
  return expectWithin(desc, ms, async () => {
    last = await live(sid);
    return last && pred(last) && last;
  }, () => `last snapshot: ${JSON.stringify(last)}`);
}

// ---- the test ------------------------------------------------------------------------

guard(async () => {
  const site = await startSite({
    port: +env('HN_SITE_PORT'), otherPort: +env('HN_OTHER_PORT'), scriptSrc: `${COLLECTOR}/h.js`, key: KEY,
  });
  const S = site.origin;
  const out = {};

  // ---------------- the real visitor ----------------
  // Headless Chromium made to look like a person's Chrome: its own UA with
  // HeadlessChrome → Chrome, navigator.webdriver false, and a public client IP
  // through X-Forwarded-For (the collector trusts 127.0.0.1/32 as a proxy).
  const ctx = await launch('visitor', { real: true, locale: 'en-US', extraHTTPHeaders: { 'X-Forwarded-For': CLIENT_IP } });
  const page = await newPage(ctx);
  check('real visitor: navigator.webdriver is false and the UA says Chrome',
    await page.evaluate(() => navigator.webdriver === false && /Chrome\//.test(navigator.userAgent) && !/Headless/.test(navigator.userAgent)));

  await page.goto(`${S}/`);   // resolves at the load event (the async widget has run)
  const sid = await sessionOf(page);
  out.session = sid;
  check('the widget made a session id', /^[A-Za-z0-9_-]{16,64}$/.test(sid), sid);
  const v = await liveWithin('landing: the visitor is in active-visitors', sid, () => true);
  if (v) {
    check(`landing: browser Chrome or Chromium (${v.browser} ${v.browser_version})`, /^(Chrome|Chromium)$/.test(v.browser), v.browser);
    eq('landing: OS, device, country, city', ['Linux', 'desktop', 'DE', 'Berlin'], [v.os, v.device, v.country, v.city]);
    eq('landing: masked IP', '203.0.113.0', v.ip);
    eq('landing: status, current page, title, landing, page views, language',
      ['active', `${S}/`, 'Home — Test shop', `${S}/`, 1, 'en-US'],
      [v.status, v.url, v.title, v.landing, v.page_views, v.language]);
    check('landing: screen as WxH', /^\d+x\d+$/.test(v.screen || ''), v.screen);
    check('landing: a visitor hash of 32 hex chars', /^[0-9a-f]{32}$/.test(v.visitor || ''), v.visitor);
  }

  // another page of the site
  await page.click('#to-about');
  await page.waitForURL(`${S}/about.html`);
  await liveWithin('next page: current page and title follow', sid,
    x => x.url == `${S}/about.html` && x.title == 'About us — Test shop' && x.page_views == 2);

  // the SPA: pushState, back (popstate), hash change
  await page.goto(`${S}/app/`);
  await liveWithin('SPA: its first page', sid, x => x.url == `${S}/app/` && x.title == 'App home — Test app');
  await page.click('#r-pricing');
  await liveWithin('SPA: pushState updates the current page within 1 s', sid,
    x => x.url == `${S}/app/pricing` && x.title == 'Pricing — Test app');
  await page.goBack();
  await liveWithin('SPA: back (popstate) updates the current page within 1 s', sid,
    x => x.url == `${S}/app/` && x.title == 'App home — Test app');
  await page.click('#r-faq');
  await liveWithin('SPA: a hash change updates the current page within 1 s', sid, x => x.url == `${S}/app/#faq`);

  // custom event, identify
  await page.evaluate(() => herenow('event', 'signup', { plan: 'pro', seats: 3, trial: true }));
  await page.evaluate(() => herenow('identify', { name: 'Ada Lovelace', email: 'ada@example.org' }));
  await liveWithin('identify: name and email in active-visitors', sid,
    x => x.name == 'Ada Lovelace' && x.email == 'ada@example.org');

  // chat: the [data-herenow-chat] button, then a message (CustomEvent)
  await page.goto(`${S}/contact.html`);
  await page.click('#chat');
  await liveWithin('chat: has_chatted after the chat button', sid, x => x.has_chatted === true);
  await page.click('#chat-send');
  await liveWithin('chat: messages_sent counts the message', sid, x => x.messages_sent == 1);

  // the tab hidden, then visible again (setHidden: headless pages are always
  // visible, so it overrides document.visibilityState and fires visibilitychange)
  await setHidden(page, true);
  await liveWithin('tab hidden: the visitor is idle within 1 s', sid, x => x.status == 'idle');
  await setHidden(page, false);
  await liveWithin('tab visible again: active', sid, x => x.status == 'active');

  // the session's history through the API (needs the drain: a longer deadline)
  let details;
  await expectWithin('session details: the custom event with its props (from PostgreSQL)', 15000, async () => {
    details = (await api(`/sessions/${sid}`)).json;
    return details && (details.events || []).find(e => e.name == 'signup');
  }, () => JSON.stringify(details).slice(0, 400));
  const signup = details && (details.events || []).find(e => e.name == 'signup');
  if (signup) eq('session details: event data', { plan: 'pro', seats: 3, trial: true }, signup.data);

  // leaving: the page closes (runBeforeUnload so that pagehide fires); end
  // takes the session out of the live list
  await page.close({ runBeforeUnload: true });
  await expectWithin('closed page: the visitor leaves active-visitors within 1 s', LIVE, async () => !(await live(sid)));
  let st;
  await expectWithin('closed page: session status gone', 5000, async () => (st = (await api(`/sessions/${sid}`)).json) && st.status == 'gone',
    () => JSON.stringify(st).slice(0, 300));
  await ctx.close();

  // ---------------- the fallback transports ----------------
  // fetch(keepalive) when sendBeacon is missing: the same visitor data
  // reaches the live list and PostgreSQL.
  out.fallbacks = [];
  for (const [name, init, props] of [
    ['fetch keepalive', NO_SENDBEACON, { plan: 'pro', seats: 2 }],
  ]) {
    const c = await launch(name.replace(/\W+/g, '-'), { real: true, locale: 'en-US', extraHTTPHeaders: { 'X-Forwarded-For': CLIENT_IP } });
    await c.addInitScript(init);
    const kinds = [];
    c.on('request', r => { if (r.url().startsWith(COLLECTOR + '/b') || r.url().startsWith(COLLECTOR + '/p.gif')) kinds.push(r.resourceType()); });
    const p = await newPage(c);
    await p.goto(`${S}/about.html`);
    const fs = await sessionOf(p);
    out.fallbacks.push(fs);
    await liveWithin(`${name}: the visitor is live with page, title and location`, fs,
      x => x.url == `${S}/about.html` && x.title == 'About us — Test shop' && x.city == 'Berlin');
    await p.evaluate(() => herenow('event', 'buy', { plan: 'pro', seats: 2 }));
    let d;
    await expectWithin(`${name}: the event reaches PostgreSQL`, 15000, async () => {
      d = (await api(`/sessions/${fs}`)).json;
      return d && (d.events || []).find(e => e.name == 'buy');
    }, () => JSON.stringify(d).slice(0, 300));
    eq(`${name}: the event's props`, props, ((d && d.events) || []).find(e => e.name == 'buy')?.data);
    eq(`${name}: every beacon went that way`, ['fetch'], [...new Set(kinds)]);
    await c.close();
  }

  // ---------------- the seed's public routes, cross-origin ----------------
  // A page of the site (another origin than the collector) calls the seed's
  // JSON routes as the seed's widget does: fetch with Content-Type
  // application/json, so Chromium sends a CORS preflight first (docs/API.md
  // "Public tracking routes"). No extra headers on this context: they would
  // be ones the preflight must allow.
  {
    const c = await launch('seed-routes', { real: true, locale: 'en-US' });
    const p = await newPage(c);
    await p.goto(`${S}/about.html`);
    const base = `${COLLECTOR}/api/visitor-tracking/public/widget/${KEY}`;
    const call = (route, body, headers = {}) => p.evaluate(async ([url, b, h]) => {
      try {
        const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...h }, body: JSON.stringify(b) });
        return { status: r.status, body: await r.text() };
      } catch (e) {
        return { error: String(e) };
      }
    }, [`${base}/${route}`, body, headers]);
    const sid = 'seed-e2e-0001';
    const r1 = await call('track-session', { session_id: sid, current_page_url: `${S}/seed`, current_page_title: 'Seed page',
      screen_width: 1280, screen_height: 720, ip: '6.6.6.6', user_agent: 'Googlebot' });
    eq('seed route: cross-origin track-session (JSON, preflighted) answers 204', { status: 204, body: '' }, r1);
    const r2 = await call('track-pageview', { sessionId: sid, pageUrl: `${S}/seed/2`, pageTitle: 'Seed 2', timeOnPreviousPage: 4 });
    eq('seed route: cross-origin track-pageview (camelCase) answers 204', 204, r2.status);
    const r3 = await call('track-event', { session_id: sid, event_type: 'chat_opened', event_data: { source: 'bubble' } });
    eq('seed route: cross-origin track-event answers 204', 204, r3.status);
    const bad = await call('track-event', { session_id: sid });
    eq('seed route: a refusal is readable cross-origin (400 bad_field event_type)',
      [400, 'bad_field', 'event_type'], [bad.status, JSON.parse(bad.body || '{}').error, JSON.parse(bad.body || '{}').field]);
    const blocked = await call('track-event', { session_id: sid, event_type: 'x' }, { 'X-Not-Allowed': '1' });
    check('seed route: a header the preflight does not allow is blocked by the browser (so the preflight ran)',
      !!blocked.error, blocked);
    await liveWithin('seed route: the session is live with its page, pages, chat and the browser\'s own UA', sid,
      x => x.url == `${S}/seed/2` && x.page_views == 2 && x.has_chatted === true && /^(Chrome|Chromium)$/.test(x.browser) &&
        x.ip != '6.6.6.0' && x.screen == '1280x720');
    await c.close();
  }

  // ---------------- visits the collector must drop ----------------
  // droppedVisit(name, reason, launchOptions): a visit of the home page; the
  // counter of that reason grows, and the session never shows up.
  async function droppedVisit(desc, reason, options, { transport = 'http', init } = {}) {
    const before = await dropped(reason, transport);
    const c = await launch(desc.replace(/\W+/g, '-'), { locale: 'en-US', ...options });
    if (init) await c.addInitScript(init);
    const p = await newPage(c);
    await p.goto(`${S}/`);
    await p.evaluate(() => herenow('event', 'should_not_count'));
    const s = await sessionOf(p);
    let after;
    await expectWithin(`${desc}: herenow_beacons_dropped_total{transport="${transport}",reason="${reason}"} grows by the pv and the event`, 2000,
      async () => (after = await dropped(reason, transport)) >= before + 2, () => `before ${before}, after ${after}`);
    check(`${desc}: no live session`, s && !(await liveIds()).includes(s), s);
    const r = await api(`/sessions/${s}`);
    eq(`${desc}: GET /sessions/:id is 404`, 404, r.status);
    await c.close();
    return s;
  }
  const ua = await headlessUA();
  check('headless UA says HeadlessChrome', ua.includes('HeadlessChrome'), ua);
  out.dropped = [
    // the UA alone: navigator.webdriver false, so no wd in the beacons
    await droppedVisit('headless Chromium (its own HeadlessChrome UA)', 'bot', {
      webdriver: false, extraHTTPHeaders: { 'X-Forwarded-For': '203.0.113.78' },
    }),
    await droppedVisit('a normal UA with navigator.webdriver true', 'bot', {
      userAgent: ua.replace('HeadlessChrome', 'Chrome'), webdriver: true, extraHTTPHeaders: { 'X-Forwarded-For': '203.0.113.79' },
    }),
    await droppedVisit('Sec-GPC: 1', 'opted_out', {
      real: true, extraHTTPHeaders: { 'X-Forwarded-For': '203.0.113.80', 'Sec-GPC': '1' },
    }),
  ];

  writeFileSync(join(env('HN_TMP'), 'e2e.json'), JSON.stringify(out));
  site.close();
});
