// tests/browser/tls.mjs: herenow over HTTPS in Debian's headless Chromium
// (tests/integration/test_tls.sh makes the test CA and starts the daemons
// with HTTPS ports; docs/OPERATIONS.md "HTTPS"). The same script runs
// against nginx in front of plain ports (the proxy recipe).
//
//   1. The dashboard over HTTPS (with HSTS when HN_HSTS is set): sign in, the
//      live list over its HTTPS event stream.
//   2. A visitor on an HTTPS site whose page loads the widget from the
//      collector's HTTPS port: beacons (the browser blocks any plain-HTTP
//      request from an HTTPS page), the live row on the dashboard, Start chat
//      → the invitation through the HTTPS chat downlink, Reply → the message
//      on the dashboard.
// The test CA is trusted by these Chromiums only (--ignore-certificate-errors-spki-list),
// by node through NODE_EXTRA_CA_CERTS. Screenshots go to $HN_ARTIFACTS.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, eq, expectWithin, guard, launch, newPage, signIn, startSite } from './lib.mjs';

const env = k => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const API = env('HN_API');                 // https://127.0.0.1:port (the api, or nginx)
const COLLECTOR = env('HN_COLLECTOR');     // https://127.0.0.1:port (the collector, or nginx)
const TOKEN = env('HN_TOKEN');
const WID = env('HN_WIDGET_ID');
const KEY = env('HN_WIDGET_KEY');          // chat on
const SPKI = env('HN_SPKI');               // the test CA's key, base64 SHA-256
const HSTS = process.env.HN_HSTS || '';    // the Strict-Transport-Security the dashboard must send
const ART = process.env.HN_ARTIFACTS || 'build/artifacts/tls';
const TAG = process.env.HN_TAG || 'tls';

const UI = '[data-herenow-chat-ui]';
const shot = (page, name) => page.screenshot({ path: join(ART, `${TAG}-${name}`) });

guard(async () => {
  mkdirSync(ART, { recursive: true });
  const tls = { cert: readFileSync(env('HN_SITE_CERT')), key: readFileSync(env('HN_SITE_KEY')) };
  const site = await startSite({ port: 0, otherPort: 0, scriptSrc: `${COLLECTOR}/h.js`, key: KEY, tls });
  check('the test site is served over HTTPS', site.origin.startsWith('https://'), site.origin);

  // ---------------- 1. the dashboard ----------------
  const agentCtx = await launch(`${TAG}-agent`, { trustSpki: SPKI, viewport: { width: 1400, height: 900 } });
  const dash = await newPage(agentCtx);
  const errors = [];
  dash.on('pageerror', e => errors.push(`dashboard: ${e.message}`));
  const streams = [];
  dash.on('request', r => { if (r.url().includes('/active-visitors/stream?')) streams.push(r.url()); });
  const first = await signIn(dash, API, TOKEN, WID);
  eq('the dashboard over HTTPS: 200, and its HSTS header', [200, HSTS || undefined],
    [first.status(), first.headers()['strict-transport-security']]);
  await expectWithin('the dashboard opens its live stream over HTTPS', 5000,
    () => streams.some(u => u.startsWith(`${API}/api/`)));

  // ---------------- 2. the visitor ----------------
  const visCtx = await launch(`${TAG}-visitor`, { real: true, trustSpki: SPKI, locale: 'en-US', viewport: { width: 1100, height: 800 } });
  const toCollector = [], failed = [];
  visCtx.on('response', r => {
    if (r.url().startsWith(COLLECTOR)) toCollector.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  visCtx.on('requestfailed', r => {
    // the downlink is an EventSource: closing the page at the end cancels it
    if (!r.url().includes('/v?')) failed.push(`${r.url()} ${r.failure() && r.failure().errorText}`);
  });
  const vis = await newPage(visCtx);
  vis.on('pageerror', e => errors.push(`visitor: ${e.message}`));
  await vis.goto(`${site.origin}/`);
  await expectWithin('the widget from the HTTPS port loads the chat script', 5000,
    () => vis.evaluate(() => !!(window.herenow && window.herenow.c)));
  const sid = await vis.evaluate(() => (sessionStorage.getItem('herenow') || '').split(' ')[0]);
  check('the widget made a session id', /^[A-Za-z0-9_-]{16,64}$/.test(sid), sid);
  const start = await expectWithin('the visitor\'s row reaches the dashboard through the HTTPS stream', 5000,
    () => dash.$(`#rows tr[data-sid="${sid}"] .start-chat`));
  const beacons = await expectWithin('beacons went to the collector over HTTPS and were taken (200/204)', 5000,
    () => toCollector.filter(x => /^POST \/b 20[04]$/.test(x)).length > 0 && toCollector);
  if (!beacons) console.log(`# to the collector: ${JSON.stringify(toCollector)}`);
  await shot(dash, 'dashboard-live.png');

  if (start) {
    await start.click();
    await dash.waitForSelector('#chat-send', { state: 'visible' });
    await dash.fill('#chat-text', 'Hello over HTTPS');
    await dash.click('#chat-send');
    const bubble = await expectWithin('Start chat: the invitation reaches the visitor through the HTTPS downlink', 3000,
      () => vis.$(`${UI} .b`));
    if (bubble) {
      eq('… with the agent\'s text', 'Hello over HTTPS', await vis.textContent(`${UI} .b .x`));
      await shot(vis, 'visitor-invitation.png');
      await vis.click(`${UI} .b button.go`);
      await vis.waitForSelector(`${UI} textarea`, { state: 'visible' });
      await vis.fill(`${UI} textarea`, 'Hi from an HTTPS page');
      await vis.press(`${UI} textarea`, 'Enter');
      await expectWithin('the visitor\'s reply reaches the agent\'s drawer', 3000,
        async () => (await dash.$$eval('#chat-thread li.m .x', xs => xs.map(x => x.textContent))).includes('Hi from an HTTPS page'));
      await shot(dash, 'agent-drawer.png');
    }
  }
  check('every request to the collector was HTTPS and none failed', toCollector.length > 0 && failed.length == 0,
    JSON.stringify({ toCollector, failed }));
  check('the downlink was opened over HTTPS (200)', toCollector.includes('GET /v 200'), JSON.stringify(toCollector));
  eq('no page error', [], errors);
  writeFileSync(join(process.env.HN_TMP || ART, `${TAG}.json`), JSON.stringify({ session: sid }));
  await visCtx.close();
  await agentCtx.close();
  site.close();
});
