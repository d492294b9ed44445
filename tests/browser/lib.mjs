// tests/browser/lib.mjs: what the browser tests share — assertions printed one
// per line ("ok - …" / "not ok - …", counted by tests/integration/test_browser.sh),
// polling with a deadline, Debian's headless Chromium through playwright-core,
// and the test site's HTTP server.
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, '..', '..');
// the Chromium profiles go here (test_browser.sh: its temp dir, removed after)
export const TMP = process.env.HN_TMP || mkdtempSync(join(tmpdir(), 'herenow-browser-'));

// ---- assertions -------------------------------------------------------------

export const counts = { passed: 0, failed: 0 };

const oneLine = v => (typeof v == 'string' ? v : JSON.stringify(v)).replace(/\r?\n/g, '\\n');

export function ok(desc) {
  counts.passed++;
  console.log(`ok - ${desc}`);
}

export function fail(desc, why) {
  counts.failed++;
  console.log(`not ok - ${desc}${why ? ` (${oneLine(why)})` : ''}`);
}

export function check(desc, cond, why) {
  cond ? ok(desc) : fail(desc, why);
  return !!cond;
}

// eq(desc, want, got): deep equality through JSON (key order ignored).
export function eq(desc, want, got) {
  const w = canon(want), g = canon(got);
  return check(desc, w === g, `expected ${w}, got ${g}`);
}

function canon(v) {
  return JSON.stringify(v, (k, x) =>
    x && typeof x == 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map(key => [key, x[key]]))
      : x);
}

// waitFor(fn, ms): polls fn (sync or async) every 25 ms until it returns a
// truthy value, which is returned; null when the deadline passes (fn's errors
// count as "not yet").
export async function waitFor(fn, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch { /* not yet */ }
    if (Date.now() >= deadline) return null;
    await new Promise(r => setTimeout(r, 25));
  }
}

// expectWithin(desc, ms, fn): an assertion that fn becomes truthy within ms;
// says how long it took. Returns fn's value (null on timeout).
export async function expectWithin(desc, ms, fn, why) {
  const t0 = Date.now();
  const v = await waitFor(fn, ms);
  if (v) ok(`${desc} (${Date.now() - t0} ms)`);
  else fail(`${desc} (not within ${ms} ms)`, typeof why == 'function' ? await why() : why);
  return v;
}

// The final line, then the exit status: 0 only when nothing failed.
export function done() {
  console.log(`# ${counts.passed} passed, ${counts.failed} failed`);
  if (!process.env.HN_TMP) rmSync(TMP, { recursive: true, force: true });
  process.exit(counts.failed ? 1 : 0);
}

// Any crash of the driver is one more failure, never a silent pass.
export function guard(main) {
  main().then(done, err => {
    fail('driver crashed', err && err.stack ? err.stack.split('\n').slice(0, 4).join(' | ') : String(err));
    done();
  });
}

// ---- Chromium -------------------------------------------------------------------

export const CHROMIUM = process.env.HN_CHROMIUM || '/usr/bin/chromium';

// The flags of the brief (running as root: no sandbox); traffic only to loopback.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// launch(name, {real, webdriver, trustSpki, ...contextOptions}): a Chromium of its own
// with a fresh user-data-dir $HN_TMP/chromium-<name>; returns its (persistent)
// context. real: the "real visitor" override, the browser's own UA with
// HeadlessChrome → Chrome; webdriver: navigator.webdriver (default: false for
// real, true otherwise, as Playwright's --enable-automation leaves it);
// trustSpki: base64 SHA-256 of a test CA's public key, trusted by this
// browser alone (--ignore-certificate-errors-spki-list: a chain holding that
// key is accepted, nothing else is).
export async function launch(name, { real = false, webdriver = !real, trustSpki, ...options } = {}) {
  const dir = join(TMP, `chromium-${name}`);
  mkdirSync(dir, { recursive: true });
  const args = [...FLAGS];
  if (trustSpki) args.push(`--ignore-certificate-errors-spki-list=${trustSpki}`);
  if (!webdriver) args.push('--disable-blink-features=AutomationControlled');
  if (real) options.userAgent = (await headlessUA()).replace('HeadlessChrome', 'Chrome');
  return chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args, ...options });
}

// This Chromium's own user agent (read once, from a throwaway profile).
let ownUA;
export async function headlessUA() {
  if (!ownUA) {
    const ctx = await launch('ua');
    const page = await newPage(ctx);
    ownUA = await page.evaluate(() => navigator.userAgent);
    await ctx.close();
  }
  return ownUA;
}

export async function newPage(ctx) {
  const blank = ctx.pages().find(p => p.url() == 'about:blank');
  return blank || ctx.newPage();
}

// Hides or shows the page's tab. Headless Chromium keeps every page visible
// (bringToFront of another page changes nothing), so this overrides
// document.visibilityState/hidden on the page's document and fires
// visibilitychange, which is exactly what the widget listens to.
export async function setHidden(page, hidden) {
  await page.evaluate(h => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

// signIn(page, api, token, wid): the dashboard at api, signed in with token, widget wid
// chosen once the widget list holds it. Returns the answer to the first GET /.
export async function signIn(page, api, token, wid) {
  const first = await page.goto(`${api}/`);
  await page.waitForSelector('#signin-form', { state: 'visible' });
  await page.fill('#token', token);
  await page.click('#signin-btn');
  await page.waitForSelector('#live', { state: 'visible' });
  await waitFor(async () => (await page.$$eval('#widget option', os => os.map(o => o.value))).includes(wid), 5000);
  await page.selectOption('#widget', wid);
  return first;
}

// ---- the test site ----------------------------------------------------------------

// startSite(port, scriptSrc, key, otherPort): serves tests/browser/site/ on
// 127.0.0.1:port, with the tag <script src=scriptSrc data-widget=key async>
// put where a page says <!--HERENOW--> (<!--HERENOW-NOAUTO-->: the same with
// data-auto-events="off"), and {{OTHER}} replaced by the origin of
// "another site" (a second server on otherPort, the target of outbound links).
// A POST (form) answers 303 to the form's page + ?sent=1. Any path that
// is not a file gets spa.html when it starts with /app (the SPA's routes).
// tls {cert, key} (PEM): the site is served over HTTPS.
export async function startSite({ port, otherPort, scriptSrc, key, tls }) {
  let other;   // known once the second server listens
  const tag = `<script src="${scriptSrc}" data-widget="${key}" async></script>`;
  const types = { html: 'text/html; charset=utf-8', js: 'text/javascript', css: 'text/css' };
  const site = (tls ? (h => createHttpsServer(tls, h)) : createServer)((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method == 'POST') {
      req.resume();
      res.writeHead(303, { Location: '/thanks.html' });
      return res.end();
    }
    let path = url.pathname == '/' ? '/index.html' : url.pathname;
    if (path.startsWith('/app')) path = '/spa.html';
    if (!/^\/[a-z0-9_-]+\.(html|js|css)$/.test(path)) {
      res.writeHead(404);
      return res.end('not found');
    }
    let body;
    try { body = readFileSync(join(HERE, 'site', path.slice(1)), 'utf8'); } catch {
      res.writeHead(404);
      return res.end('not found');
    }
    body = body.replaceAll('<!--HERENOW-->', tag)
      .replace('<!--HERENOW-NOAUTO-->', tag.replace(' async', ' data-auto-events="off" async'))
      .replaceAll('{{OTHER}}', other);
    res.writeHead(200, { 'Content-Type': types[path.split('.').pop()], 'Cache-Control': 'no-store' });
    res.end(body);
  });
  const elsewhere = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Elsewhere</title><p>Another site.</p>');
  });
  await Promise.all([listen(site, port), listen(elsewhere, otherPort)]);
  other = `http://127.0.0.1:${elsewhere.address().port}`;
  return {
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${site.address().port}`,
    other,
    close: () => { site.closeAllConnections(); elsewhere.closeAllConnections(); site.close(); elsewhere.close(); },
  };
}

export function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port || 0, '127.0.0.1', resolve);
  });
}
