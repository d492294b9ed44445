// tests/browser/pages.mjs: the dashboard's Pages now panel, its page filter,
// the time picker (the past view) and the concurrency chart (api/www/pages.js,
// timetravel.js, concurrency.js) in Debian's headless Chromium against the
// real api. Visitors come from UDP beacons (herenowctl send); the history
// (T0 three hours ago, a long session an hour ago) was written into
// PostgreSQL by tests/integration/test_dashboard_pages.sh, which runs this.
//
// Environment: HN_API_URL, HN_TOKEN, HN_WIDGET_ID, HN_WIDGET_KEY, HN_CTL,
// HN_UDP (host:port), HN_T0 (ISO instant), HN_ARTIFACTS (screenshots).
// One line per assertion ("ok - …" / "not ok - …"); exit 1 on any failure.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, check, eq, expectWithin, guard, launch, newPage } from './lib.mjs';

const env = name => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('HN_API_URL');
const API = `${BASE}/api/visitor-tracking`;
const TOKEN = env('HN_TOKEN');
const WID = env('HN_WIDGET_ID');
const KEY = env('HN_WIDGET_KEY');
const CTL = env('HN_CTL');
const UDP = env('HN_UDP');
const T0 = Date.parse(env('HN_T0'));
const ART = process.env.HN_ARTIFACTS || join(ROOT, 'build', 'artifacts', 'dashboard-pages');
const TZ = 'Asia/Kolkata';           // UTC+05:30 all year: the offset shows its minutes
const TZ_OFF_MS = 330 * 60e3;

const LIVE = 1500;      // ms: a beacon reaches the live list within this
const PAGES = 4000;     // ms: … and Pages now (the hub's table: ≤ 1 s, the event: ≤ 1/s)
const U = 'https://shop.example';
const RTL_TITLE = 'اتصل بنا — صفحة الاتصال';
const LONG_PATH = `/blog/${'a-really-long-article-slug-'.repeat(5)}end?utm_source=newsletter&utm_campaign=${'x'.repeat(40)}`;
const LONG_TITLE = `A very long article title that goes on and on ${'and on '.repeat(12)}until the end`;
const XSS_TITLE = '<img src=x onerror="window.__pwned=1">Pricing';

async function api(path) {
  const r = await fetch(API + path, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return r.json();
}

// send(session, type, ...flags): one UDP beacon through herenowctl.
function send(session, type, ...flags) {
  execFileSync(CTL, ['send', '--to', UDP, '--key', KEY, '--session', session, '--type', type, ...flags], { stdio: 'ignore' });
}
const pv = (sid, seq, path, title) => send(sid, 'pv', '--seq', String(seq), '--url', U + path, '--title', title);

// Pages now as the panel shows it: "url live active" per item, in order.
const panel = page => page.$$eval('#pages-list li[data-url]', lis => lis.map(li =>
  `${li.dataset.url} ${li.querySelector('.pg-live').textContent} ${parseInt(li.querySelector('.pg-active').textContent, 10)}`));
const apiPages = async () => (await api(`/widgets/${WID}/pages/live?limit=50`)).pages.map(p => `${p.url ?? ''} ${p.live} ${p.active}`);
const rowIds = page => page.$$eval('#rows tr', trs => trs.map(tr => tr.dataset.sid).sort());
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// The panel shows want (and so does the API: the panel is the API's table).
async function pagesAre(desc, page, want) {
  let got;
  const v = await expectWithin(`Pages now: ${desc}`, PAGES, async () => same(got = await panel(page), want),
    () => `panel: ${JSON.stringify(got)}`);
  if (v) eq(`…the API's pages/live says the same (${desc})`, want, await apiPages());
}

async function rowsAre(desc, page, want, ms = LIVE) {
  let got;
  return expectWithin(desc, ms, async () => same(got = await rowIds(page), [...want].sort()), () => `rows: ${JSON.stringify(got)}`);
}

const shot = (page, name, options = {}) => page.screenshot({ path: join(ART, name), ...options });
const clock = ms => new Date(ms + TZ_OFF_MS).toISOString().slice(11, 19);   // HH:MM:SS in Kolkata

guard(async () => {
  mkdirSync(ART, { recursive: true });
  const ctx = await launch('pages', { viewport: { width: 1280, height: 900 }, locale: 'en-US', timezoneId: TZ });
  const problems = [];
  await ctx.exposeBinding('__hnCsp', (_src, what) => problems.push(`CSP: ${what}`));
  await ctx.addInitScript(() => document.addEventListener('securitypolicyviolation', e => window.__hnCsp(`${e.violatedDirective} ${e.blockedURI}`)));
  const dash = await newPage(ctx);
  dash.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  dash.on('pageerror', e => problems.push(`page error: ${e.message}`));
  const streams = [];
  ctx.on('request', r => { if (r.url().includes('/active-visitors/stream?')) streams.push(r.url()); });

  await dash.goto(`${BASE}/#widget=${WID}`);
  await dash.waitForSelector('#signin-form', { state: 'visible' });
  await dash.fill('#token', TOKEN);
  await dash.click('#signin-btn');
  await expectWithin('signed in, the list is live (SSE)', 5000, async () => (await dash.textContent('#mode-text')) === 'live');
  check('the stream is opened with pages=true', streams.some(u => /[?&]pages=true(&|$)/.test(u)), streams);
  await expectWithin('Pages now: no one yet, the panel says so', PAGES, async () =>
    (await dash.textContent('#pages-list')).includes('No one is on the site right now.'));

  // ---------------- Pages now: counts as visitors come, navigate, hide, leave ----------------
  pv('liveAAAA0001', 1, '/pricing', 'Pricing');
  pv('liveBBBB0001', 1, '/pricing', 'Pricing');
  pv('liveCCCC0001', 1, '/', 'Home');
  pv('liveDDDD0001', 1, LONG_PATH, LONG_TITLE);
  pv('liveEEEE0001', 1, '/contact', RTL_TITLE);
  await pagesAre('five visitors on four pages, busiest first, then by url', dash,
    [`${U}/pricing 2 2`, `${U}/ 1 1`, `${U}${LONG_PATH} 1 1`, `${U}/contact 1 1`]);
  eq('the panel\'s summary', '4 pages · 5 live · 5 active', await dash.textContent('#pages-sum'));
  const item = (url, sel) => dash.$eval(`#pages-list li[data-url="${url}"] ${sel}`, el => ({
    text: el.textContent, title: el.closest('button').title, dir: el.getAttribute('dir'),
    direction: getComputedStyle(el).direction, cut: el.scrollWidth > el.clientWidth,
  }));
  const long = await item(U + LONG_PATH, '.pg-title');
  check('a long title is cut with an ellipsis, the whole title and URL in the tooltip',
    long.cut && long.title.includes(LONG_TITLE) && long.title.includes(U + LONG_PATH), long);
  const longPath = await item(U + LONG_PATH, '.pg-path');
  check('a long URL: its path and query, cut with an ellipsis', longPath.cut && longPath.text === LONG_PATH, longPath);
  const rtl = await item(`${U}/contact`, '.pg-title');
  eq('an RTL title: dir=auto, laid out right to left', [RTL_TITLE, 'auto', 'rtl'], [rtl.text, rtl.dir, rtl.direction]);
  await rowsAre('the live list has the five', dash, ['liveAAAA0001', 'liveBBBB0001', 'liveCCCC0001', 'liveDDDD0001', 'liveEEEE0001']);
  await shot(dash, 'pages-panel.png');

  pv('liveBBBB0001', 2, '/signup', 'Sign up');
  await pagesAre('B navigates to /signup', dash,
    [`${U}/ 1 1`, `${U}${LONG_PATH} 1 1`, `${U}/contact 1 1`, `${U}/pricing 1 1`, `${U}/signup 1 1`]);
  send('liveAAAA0001', 'hide', '--seq', '2', '--engaged', '1000');
  await pagesAre('A hides its tab: /pricing 1 live, 0 active (after the active pages)', dash,
    [`${U}/ 1 1`, `${U}${LONG_PATH} 1 1`, `${U}/contact 1 1`, `${U}/signup 1 1`, `${U}/pricing 1 0`]);
  send('liveCCCC0001', 'end', '--seq', '2');
  await pagesAre('C leaves: its page goes', dash,
    [`${U}${LONG_PATH} 1 1`, `${U}/contact 1 1`, `${U}/signup 1 1`, `${U}/pricing 1 0`]);

  // ---------------- a click filters the list to that page, live ----------------
  await dash.click(`#pages-list li[data-url="${U}/pricing"] button`);
  await rowsAre('a click on /pricing: the list shows only its visitor (A)', dash, ['liveAAAA0001']);
  eq('the filter chip "Page: /pricing" is shown; the page is pressed in the panel', ['Page: /pricing', true, 'true'],
    [await dash.textContent('#pin-text'), await dash.isVisible('#pin'),
      await dash.getAttribute(`#pages-list li[data-url="${U}/pricing"] button`, 'aria-pressed')]);
  pv('liveFFFF0001', 1, '/pricing', XSS_TITLE);
  await rowsAre('a newcomer on /pricing joins the filtered list', dash, ['liveAAAA0001', 'liveFFFF0001']);
  pv('liveBBBB0001', 3, '/pricing', 'Pricing');
  pv('liveDDDD0001', 2, '/contact', RTL_TITLE);
  await rowsAre('B comes back to /pricing and joins; D (elsewhere) does not', dash, ['liveAAAA0001', 'liveBBBB0001', 'liveFFFF0001']);
  await pagesAre('/pricing now 3 (2 active), /contact 2', dash, [`${U}/pricing 3 2`, `${U}/contact 2 2`]);
  eq('visitors\' titles are text: no element made of them, nothing ran',
    [0, undefined], await dash.evaluate(() => [document.querySelectorAll('#pages-list img, #rows img').length, window.__pwned]));
  await shot(dash, 'pages-filtered.png');
  await dash.click('#pin-clear');
  await rowsAre('× on the chip: every live visitor again', dash,
    ['liveAAAA0001', 'liveBBBB0001', 'liveDDDD0001', 'liveEEEE0001', 'liveFFFF0001']);
  check('…and the chip is gone', !(await dash.isVisible('#pin')));

  // ---------------- time travel: T0, three hours ago ----------------
  const liveCount = async () => (await dash.title()).match(/^\((\d+)\)/)?.[1];
  // datetime-local in Kolkata; T0 is on a whole minute (Chromium's value drops ":00" seconds)
  const t0Local = new Date(T0 + TZ_OFF_MS).toISOString().slice(0, 16);
  await dash.fill('#t-at', t0Local);
  await expectWithin('a past instant in the picker: the list of then is loaded', 5000, async () =>
    (await dash.getAttribute('#live', 'data-past-loaded')) === new Date(T0).toISOString());
  await rowsAre('at T0: the sessions that were there (A active, B idle; not the ended, the later, the timed out)', dash,
    ['pastAAAA0001', 'pastBBBB0001']);
  const banner = await dash.textContent('#past');
  check(`the past is marked: a banner "Showing who was on the site at ${clock(T0)} (UTC+05:30) — back to now"`,
    await dash.isVisible('#past') && banner.includes(`Showing who was on the site at`) &&
    banner.includes(`${clock(T0)} (UTC+05:30)`) && banner.includes('back to now'), banner);
  check('…in its own style (the section is .is-past)', await dash.evaluate(() => document.querySelector('#live').classList.contains('is-past')));
  // the count line is redrawn at most every 100 ms (app.js COUNT_MS), a frame or more after the rows
  await expectWithin('the count says then', 1000,
    async () => (await dash.textContent('#count')).startsWith(`2 visitors were on the site at`),
    () => dash.textContent('#count'));
  eq('Start chat: on every past row, disabled', [2, 2],
    await dash.evaluate(() => [document.querySelectorAll('#rows .start-chat').length, document.querySelectorAll('#rows .start-chat[disabled]').length]));
  eq('the rows of then: A on /pricing active, B on /blog idle', ['active Then: /pricing', 'idle Then: /blog'],
    await dash.$$eval('#rows tr', trs => trs.map(tr => `${tr.dataset.status} ${tr.querySelector('.c-page .title').textContent}`).sort()));
  eq('the panel shows the pages of then', ['Pages then', `${U}/pricing 1 1`, `${U}/blog 1 0`],
    [await dash.textContent('#pages-h'), ...await panel(dash)]);
  await shot(dash, 'past-view.png');
  pv('liveGGGG0001', 1, '/pricing', 'Pricing');
  await expectWithin('a visitor enters meanwhile: the live count (tab title) has 6', LIVE + 1000, async () => (await liveCount()) === '6',
    async () => dash.title());
  eq('…and the past list is not touched by it', ['pastAAAA0001', 'pastBBBB0001'], await rowIds(dash));

  await dash.click('#when [data-ago="3600"]');
  await expectWithin('"1 hour ago": the list of then is loaded', 5000, async () => {
    const at = Date.parse(await dash.getAttribute('#live', 'data-past-loaded'));
    return Math.abs(at - (Date.now() - 3600e3)) < 60e3;
  });
  await rowsAre('…the long session of an hour ago', dash, ['pastLONG0001']);
  eq('…its quick choice is pressed, Now is not', ['true', 'false'],
    [await dash.getAttribute('#when [data-ago="3600"]', 'aria-pressed'), await dash.getAttribute('#t-now', 'aria-pressed')]);

  await dash.click('#past-now');
  const liveSet = ['liveAAAA0001', 'liveBBBB0001', 'liveDDDD0001', 'liveEEEE0001', 'liveFFFF0001', 'liveGGGG0001'];
  await rowsAre('back to now: the live list, with the one who came meanwhile', dash, liveSet, 500);
  eq('…no banner, not .is-past, Now pressed', [false, false, 'true'],
    [await dash.isVisible('#past'), await dash.evaluate(() => document.querySelector('#live').classList.contains('is-past')),
      await dash.getAttribute('#t-now', 'aria-pressed')]);
  eq('…Start chat enabled on every row again', [6, 0],
    await dash.evaluate(() => [document.querySelectorAll('#rows .start-chat').length, document.querySelectorAll('#rows .start-chat[disabled]').length]));
  await pagesAre('…Pages now again', dash, [`${U}/pricing 4 3`, `${U}/contact 2 2`]);

  // ---------------- the concurrency chart (statistics, 24 h: 5-minute buckets) ----------------
  await dash.click('#tab-stats');
  await expectWithin('statistics: the concurrency chart is loaded (24 h in 5-minute buckets)', 8000, async () =>
    (await dash.getAttribute('#conc', 'data-loaded')) === '24h 5m');
  const conc = await api(`/widgets/${WID}/concurrency?from=24h&interval=5m`);
  const chart = await dash.evaluate(() => ({
    buckets: +document.querySelector('#conc-chart').dataset.buckets,
    bars: [...document.querySelectorAll('#conc-chart .conc-peak')].map(r => [r.dataset.time, +r.dataset.peak, +r.dataset.avg]),
    avg: (document.querySelector('#conc-chart .conc-avg')?.getAttribute('d') || '').split('L').length,
    cap: document.querySelector('#conc-cap').textContent,
  }));
  check(`the chart has the API's buckets (${conc.buckets.length}, ≤ 1440) and an average line over all of them`,
    Math.abs(chart.buckets - conc.buckets.length) <= 1 && chart.avg === chart.buckets && chart.buckets <= 1440, chart);
  const old = Date.now() - 1800e3;    // the history's part: what the drain does now cannot change it
  const apiOld = conc.buckets.filter(b => b.peak > 0 && Date.parse(b.time) < old).map(b => [b.time, b.peak, b.avg]);
  eq('its bars before the last half hour are the API\'s peaks and averages (T0 and the long session)', apiOld,
    chart.bars.filter(b => Date.parse(b[0]) < old));
  const t0Bucket = new Date(Math.floor(T0 / 300e3) * 300e3).toISOString();
  check('the bucket of T0 has a bar of at least 2 (A and B)', chart.bars.some(b => b[0] === t0Bucket && b[1] >= 2), chart.bars);
  check('the caption names the peak of the range', chart.cap.startsWith('Concurrent visitors per 5 minutes — peak '), chart.cap);
  await dash.$eval('#conc', el => el.scrollIntoView());
  await shot(dash, 'concurrency.png', { clip: await dash.$eval('#conc', el => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; }) });
  await dash.click('[data-range="30d"]');
  await expectWithin('30 days: hourly buckets (721 at most)', 8000, async () => (await dash.getAttribute('#conc', 'data-loaded')) === '30d 1h');

  // ---------------- phone width ----------------
  await dash.click('#tab-live');
  await dash.setViewportSize({ width: 375, height: 812 });
  await dash.click(`#pages-list li[data-url="${U}/contact"] button`);
  await rowsAre('phone: a click on /contact filters the list', dash, ['liveDDDD0001', 'liveEEEE0001']);
  const fit = await dash.evaluate(() => ({
    scroll: document.scrollingElement.scrollWidth, width: innerWidth,
    panel: document.querySelector('#pages').getBoundingClientRect().width,
    pin: document.querySelector('#pin').getBoundingClientRect().right,
  }));
  check('phone: no sideways scroll; the panel and the chip fit the width', fit.scroll <= fit.width && fit.panel <= fit.width && fit.pin <= fit.width, fit);
  pv('liveHHHH0001', 1, '/about', 'About');
  pv('liveIIII0001', 1, '/faq', 'FAQ');
  let phoneItems;
  await expectWithin('phone: 4 pages, the panel shows the busiest 3 and "Show all 4"', PAGES, async () => {
    phoneItems = [(await panel(dash)).length, await dash.isVisible('#pages-more') && await dash.textContent('#pages-more')];
    return same(phoneItems, [3, 'Show all 4']);
  }, () => JSON.stringify(phoneItems));
  await dash.click('#pages-more');
  eq('…which shows the 4th', [4, 'Show fewer', 'true'],
    [(await panel(dash)).length, await dash.textContent('#pages-more'), await dash.getAttribute('#pages-more', 'aria-expanded')]);
  await dash.click('#pages-more');
  await rowsAre('phone: the list is still filtered to /contact', dash, ['liveDDDD0001', 'liveEEEE0001']);
  await shot(dash, 'pages-phone.png', { fullPage: true });
  await dash.click('#pin-clear');
  await dash.setViewportSize({ width: 1280, height: 900 });

  eq('no console error or warning, no uncaught error, no CSP violation', [], problems);
  await ctx.close();
});
