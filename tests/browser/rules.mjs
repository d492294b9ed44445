// tests/browser/rules.mjs: the dashboard's Rules view, the alert toasts, and the
// notes, tags and bans of visitors (api/www/rules.js, alerts.js, notes.js) in
// Debian's headless Chromium against the real api (rules routes, engine,
// notes/tags/bans routes). Visitors come from UDP beacons (herenowctl send).
// Run by tests/integration/test_dashboard_rules.sh.
//
// Environment: HN_API_URL, HN_TOKEN, HN_WIDGET_ID, HN_WIDGET_KEY, HN_CTL,
// HN_UDP (host:port), HN_ARTIFACTS (screenshots).
// One line per assertion ("ok - …" / "not ok - …"); exit 1 on any failure.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, check, eq, expectWithin, guard, launch, listen, newPage, setHidden } from './lib.mjs';

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
const ART = process.env.HN_ARTIFACTS || join(ROOT, 'build', 'artifacts', 'dashboard-rules');

const LIVE = 2000;      // ms: a beacon reaches the live list within this
const ALERT = 6000;     // ms: rule (re)load ≤ 1 s + the match + the hub
const U = 'https://shop.example';
const RULE = 'Pricing readers';
const ALERT_TEXT = 'Someone reads pricing <b>now</b>';
const RTL_NOTE = 'اتصل بالعميل يوم الاثنين';
const XSS_NOTE = '<img src=x onerror="window.__pwned=1">called, wants a demo';
const LONG_NAME = `A rule with a very long name ${'that goes on '.repeat(10)}until the end`;

async function api(path, method = 'GET', body) {
  const r = await fetch(API + path, {
    method, headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* 204 */ }
  return { status: r.status, json };
}
// the engine's count of enabled rules it has compiled (it reloads a widget's rules within
// HERENOW_RULES_RELOAD_MS of a change): a visit sent before the reload would meet the old set
const rulesLoaded = async () => {
  const m = (await (await fetch(`${BASE}/metrics`)).text()).match(/^herenow_rules_loaded (\d+)$/m);
  return m ? Number(m[1]) : -1;
};
const rules = async () => ((await api(`/widgets/${WID}/rules`)).json || {}).rules || [];
const ruleNamed = async name => (await rules()).find(r => r.name === name);
const defOf = r => ({ ...(r.definition || {}), ...r });

function send(session, type, ...flags) {
  execFileSync(CTL, ['send', '--to', UDP, '--key', KEY, '--session', session, '--type', type, ...flags], { stdio: 'ignore' });
}
const pv = (sid, seq, path, title, ...more) => send(sid, 'pv', '--seq', String(seq), '--url', U + path, '--title', title, ...more);

const shot = (page, name, options = {}) => page.screenshot({ path: join(ART, name), ...options });
const row = sid => `#rows tr[data-sid="${sid}"]`;

// Nothing of the view reaches past the viewport's width.
const overflow = page => page.evaluate(() => {
  const w = document.documentElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('#rules *, #toasts *, #details *')) {
    const r = el.getBoundingClientRect();
    if (r.width && el.offsetParent !== null && r.right > w + 1) out.push(`${el.tagName}.${el.className} ${Math.round(r.right)}>${w}`);
  }
  return out.slice(0, 5);
});

guard(async () => {
  mkdirSync(ART, { recursive: true });
  const ctx = await launch('rules', { viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  const problems = [];
  await ctx.exposeBinding('__hnCsp', (_src, what) => problems.push(`CSP: ${what}`));
  await ctx.addInitScript(() => document.addEventListener('securitypolicyviolation', e => window.__hnCsp(`${e.violatedDirective} ${e.blockedURI}`)));
  // the alert's sound and notification, counted: every oscillator started, every
  // Notification made (granted, as if the agent had allowed it)
  await ctx.addInitScript(() => {
    window.__beeps = 0;
    window.__notes = [];
    const AC = window.AudioContext;
    window.AudioContext = class extends AC { createOscillator() { window.__beeps++; return super.createOscillator(); } };
    window.Notification = class { constructor(title, o) { window.__notes.push({ title, body: o && o.body }); } close() {} };
    window.Notification.permission = 'granted';
    window.Notification.requestPermission = async () => 'granted';
  });
  const dash = await newPage(ctx);
  dash.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  dash.on('pageerror', e => problems.push(`page error: ${e.message}`));
  const dialogs = [];
  dash.on('dialog', d => { dialogs.push(d.message()); d.accept(); });

  await dash.goto(`${BASE}/#widget=${WID}`);
  await dash.waitForSelector('#signin-form', { state: 'visible' });
  await dash.fill('#token', TOKEN);
  await dash.click('#signin-btn');
  await expectWithin('signed in, the list is live (SSE)', 5000, async () => (await dash.textContent('#mode-text')) === 'live');

  // ---------------- tags and a note on a live visitor → chips on the row ----------------
  pv('tagBBBB0001', 1, '/blog', 'Blog', '--vid', 'vis-tagged');
  pv('plainCCC0001', 1, '/', 'Home', '--vid', 'vis-plain');
  await expectWithin('two more visitors on the list', LIVE, async () => (await dash.$(row('tagBBBB0001'))) && (await dash.$(row('plainCCC0001'))));
  await dash.click(row('tagBBBB0001'));
  await dash.waitForSelector('#anno-tags', { state: 'visible', timeout: 5000 });
  await dash.fill('#anno-tags', 'VIP, lead');
  await dash.click('#anno-tags-save');
  await expectWithin('tags saved: the field shows them as stored (lower-cased)', 3000, async () =>
    (await dash.textContent('#anno-msg')) === 'Tags saved.'
    && (await dash.inputValue('#anno-tags')).split(', ').sort().join() === 'lead,vip');
  await dash.fill('#anno-note', XSS_NOTE);
  await dash.click('#anno-note-add');
  await expectWithin('a note added, listed in the details', 3000, async () => (await dash.textContent('#anno-notes')).includes(XSS_NOTE));
  await dash.fill('#anno-note', RTL_NOTE);
  await dash.click('#anno-note-add');
  await expectWithin('a second (right-to-left) note, newest first', 3000, async () =>
    JSON.stringify(await dash.$$eval('#anno-notes .anno-note-body', l => l.map(e => e.textContent))) === JSON.stringify([RTL_NOTE, XSS_NOTE]));
  eq('the RTL note is laid out right to left', 'rtl', await dash.$eval('#anno-notes .anno-note-body', e => getComputedStyle(e).direction));
  check('markup in a note is text: no element made, nothing run',
    !(await dash.$('#anno-notes img')) && !(await dash.evaluate(() => window.__pwned)));
  const notesApi = (await api(`/widgets/${WID}/visitor-notes?visitor=vis-tagged`)).json;
  eq('the API has both notes', 2, ((notesApi || {}).notes || []).length);
  await shot(dash, 'visitor-details-notes.png');
  await dash.click('#d-close');
  const chips = await expectWithin('the row shows the tags as chips and a note marker', 3000, async () => {
    const tags = await dash.$$eval(`${row('tagBBBB0001')} .chip.tag`, l => l.map(e => e.textContent));
    const mark = await dash.$eval(`${row('tagBBBB0001')} .note-mark`, e => e.textContent).catch(() => '');
    return tags.length === 2 && mark ? { tags, mark } : null;
  });
  if (chips) eq('… lead and vip, 2 notes', { tags: ['lead', 'vip'], mark: '✎ 2' }, { tags: [...chips.tags].sort(), mark: chips.mark });
  check('the untagged visitor has no chips', !(await dash.$(`${row('plainCCC0001')} .anno`)));
  await shot(dash, 'tagged-visitor.png');

  // the Tag filter (client-side): only vip visitors, and a newcomer with the tag joins
  await expectWithin('the Tag filter offers the tags', 2000, async () =>
    JSON.stringify(await dash.$$eval('#f-tag option', os => os.map(o => o.value))) === JSON.stringify(['', 'lead', 'vip']));
  await dash.selectOption('#f-tag', 'vip');
  await expectWithin('Tag: vip shows only the tagged visitor', 2000, async () =>
    JSON.stringify(await dash.$$eval('#rows tr', l => l.map(tr => tr.dataset.sid))) === '["tagBBBB0001"]');
  // stream updates go through the filter: the tagged visitor navigates (stays, on the new
  // page), an untagged newcomer does not join
  pv('tagBBBB0001', 2, '/pricing', 'Pricing', '--vid', 'vis-tagged');
  pv('newDDDD0001', 1, '/pricing', 'Pricing', '--vid', 'vis-new');
  await expectWithin('… the tagged visitor\'s navigation shows in the filtered list', LIVE, async () =>
    (await dash.textContent(`${row('tagBBBB0001')} .c-page .url`)) === `${U}/pricing`);
  await expectWithin('… the untagged newcomer is on the site', LIVE, async () =>
    (await dash.textContent('#count')).startsWith('3 visitors'));
  eq('… but not in the filtered list', ['tagBBBB0001'], await dash.$$eval('#rows tr', l => l.map(tr => tr.dataset.sid)));
  await dash.selectOption('#f-tag', '');

  // ---------------- ban / unban ----------------
  await dash.click(row('plainCCC0001'));
  await dash.waitForSelector('#anno-ban', { state: 'visible', timeout: 5000 });
  await dash.check('#anno-block');
  await dash.fill('#anno-reason', 'spam');
  await dash.click('#anno-ban');
  await expectWithin('banned (with tracking): the details say so', 3000, async () =>
    (await dash.textContent('#d-anno')).includes('Banned (chat and tracking)'));
  const bans = ((await api(`/widgets/${WID}/bans`)).json || {}).bans || [];
  check('the API lists the ban: that visitor, block_tracking', bans.length === 1 && bans[0].block_tracking === true
    && JSON.stringify(bans[0]).includes('vis-plain'), bans);
  check('the ban asked for a confirmation', dialogs.some(m => m.includes('Ban visitor vis-plain')), dialogs);
  await dash.click('#d-close');
  await expectWithin('the row shows "banned"', 3000, async () => (await dash.textContent(`${row('plainCCC0001')} .chip.banned`)) === 'banned');
  await dash.click(row('plainCCC0001'));
  await dash.waitForSelector('#anno-unban', { state: 'visible', timeout: 5000 });
  await dash.click('#anno-unban');
  await expectWithin('unbanned: the details offer Ban again', 3000, async () => dash.isVisible('#anno-ban'));
  eq('… and the API has no ban', 0, (((await api(`/widgets/${WID}/bans`)).json || {}).bans || []).length);
  await dash.click('#d-close');
  await expectWithin('… and the row no longer says banned', 3000, async () => !(await dash.$(`${row('plainCCC0001')} .chip.banned`)));

  // ---------------- the Rules view: a bad regex, then a rule made in the editor ----------------
  await dash.click('#tab-rules');
  await expectWithin('the Rules view: no rules yet', 3000, async () => (await dash.textContent('#rules-list')).includes('No rules yet'));
  check('the address bar says view=rules', /view=rules/.test(dash.url()), dash.url());
  await dash.click('#rule-new');
  await dash.fill('#re-name', RULE);
  // the first condition row: url glob */pricing*; a second: title regex, catastrophic
  const cond = n => `#re-conds li:nth-child(${n})`;
  await dash.selectOption(`${cond(1)} .c-field`, 'url');
  await dash.selectOption(`${cond(1)} .c-op`, 'glob');
  await dash.fill(`${cond(1)} .c-value`, '*/pricing*');
  await dash.click('#re-add-cond');
  await dash.selectOption(`${cond(2)} .c-field`, 'title');
  await dash.selectOption(`${cond(2)} .c-op`, 'regex');
  await dash.fill(`${cond(2)} .c-value`, '([a-z');
  await dash.check('#re-al-on');
  await dash.fill('#re-al-text', ALERT_TEXT);
  // the op list follows the field: country offers in / not in, a list value
  await dash.click('#re-add-cond');
  await dash.selectOption(`${cond(3)} .c-field`, 'country');
  eq('country\'s ops are in / not in', ['in', 'not_in'], await dash.$$eval(`${cond(3)} .c-op option`, os => os.map(o => o.value)));
  eq('… and its value is a list', 'list', await dash.$eval(`${cond(3)} .c-value`, el => el.dataset.kind));
  await dash.selectOption(`${cond(3)} .c-field`, 'time_on_page');
  eq('time_on_page: gte, a number', ['gte', 'number'], [await dash.$eval(`${cond(3)} .c-op`, el => el.value), await dash.$eval(`${cond(3)} .c-value`, el => el.type)]);
  await dash.click(`${cond(3)} .c-remove`);
  eq('a condition row removed', 2, await dash.$$eval('#re-conds li', l => l.length));

  await dash.click('#re-save');
  const refused = await expectWithin('a bad regex: the API\'s 400 reason is shown next to the form', 3000, async () =>
    (await dash.isVisible('#re-error')) && (await dash.textContent('#re-error')));
  const direct = await api(`/widgets/${WID}/rules`, 'POST', { name: RULE, match: 'all',
    conditions: [{ field: 'url', op: 'glob', value: '*/pricing*' }, { field: 'title', op: 'regex', value: '([a-z' }],
    actions: [{ type: 'alert', text: ALERT_TEXT, sound: true, notify: true }] });
  eq('… word for word what the API says to the same definition', [400, direct.json && direct.json.error], [direct.status, refused]);
  eq('… and no rule was made', 0, (await rules()).length);

  await dash.click(`${cond(2)} .c-remove`);
  await dash.click('#re-save');
  await expectWithin('the rule is created and listed', 3000, async () => (await dash.textContent('#rules-list')).includes(RULE));
  const made = defOf(await ruleNamed(RULE) || {});
  eq('the API has the definition the editor built', {
    enabled: true, match: 'all', conditions: [{ field: 'url', op: 'glob', value: '*/pricing*' }],
    actions: [{ type: 'alert', text: ALERT_TEXT, sound: true, notify: true }],
  }, { enabled: made.enabled, match: made.match, conditions: made.conditions, actions: made.actions });
  const secret = await expectWithin('the webhook secret is shown once, with a copy button', 2000, async () =>
    (await dash.isVisible('#re-secret-copy')) && (await dash.textContent('#re-secret-value')));
  check('… a secret of some length', typeof secret === 'string' && secret.length >= 16, secret);
  await shot(dash, 'rule-editor.png');
  await dash.click(`#rules-list li[data-id="${made.id}"] .rule-edit`);
  check('opening the rule again does not show the secret', !(await dash.isVisible('#re-secret-copy')));
  eq('the editor reads the rule back', ['*/pricing*', ALERT_TEXT],
    [await dash.inputValue(`${cond(1)} .c-value`), await dash.inputValue('#re-al-text')]);

  // ---------------- enable / disable ----------------
  const toggle = `#rules-list li[data-id="${made.id}"] .rule-enabled`;
  await dash.uncheck(toggle);
  await expectWithin('disabled from the list: the API says enabled=false', 3000, async () => defOf(await ruleNamed(RULE)).enabled === false);
  await expectWithin('… and the list shows it off', 2000, async () => dash.$eval(`#rules-list li[data-id="${made.id}"]`, li => li.classList.contains('off')));
  await expectWithin('… and the engine has dropped it', 5000, async () => (await rulesLoaded()) === 0);
  await dash.check(toggle);
  await expectWithin('enabled again: the API says enabled=true', 3000, async () => defOf(await ruleNamed(RULE)).enabled === true);
  await expectWithin('… and the engine has loaded it again', 5000, async () => (await rulesLoaded()) === 1);

  // ---------------- an alert toast when a scripted visit matches ----------------
  await dash.check('#alert-sound');
  await dash.check('#alert-notify');
  await dash.click('#tab-live');
  await setHidden(dash, true);             // a notification only for a tab in the background
  pv('alertAAAA001', 1, '/pricing?plan=pro', 'Pricing', '--vid', 'vis-alert');
  const toast = await expectWithin('the rule fires: an alert toast with the rule\'s name and text', ALERT, async () => {
    const t = await dash.$('#toasts .toast[data-sid="alertAAAA001"]');
    return t && { rule: await t.$eval('.toast-rule', e => e.textContent), text: await t.$eval('.toast-text', e => e.textContent) };
  });
  if (toast) eq('… text as text (markup shown, not run)', { rule: RULE, text: ALERT_TEXT }, toast);
  eq('… a beep and a browser notification (the rule asks, the agent allowed both)',
    { beeps: 1, notes: [{ title: `herenow: ${RULE}`, body: ALERT_TEXT }] },
    await dash.evaluate(() => ({ beeps: window.__beeps, notes: window.__notes })));
  await setHidden(dash, false);
  if (toast) {
    await shot(dash, 'alert-toast.png');
    await dash.click('#toasts .toast[data-sid="alertAAAA001"] .toast-open');
    await expectWithin('Show visitor opens that visitor\'s details', 3000, async () =>
      (await dash.$eval('#details', d => d.open)) && (await dash.textContent('#d-body')).includes('alertAAAA001'));
    await dash.click('#d-close');
    const fired = defOf(await ruleNamed(RULE));
    check('the list counts the firing (fired ≥ 1, last fired set)', fired.fired >= 1 && fired.last_fired_at, fired);
  }
  // toasts stack at most 4 and leave by themselves
  await dash.evaluate(async () => {
    const { alertEvent } = await import('./alerts.js');
    for (let i = 0; i < 6; i++) alertEvent({ rule_id: 900 + i, rule: `Burst ${i}`, text: 't', session_id: `burst${i}` });
  });
  eq('… alerts that do not ask for sound or notification: none', { beeps: 1, notes: 1 },
    await dash.evaluate(() => ({ beeps: window.__beeps, notes: window.__notes.length })));
  eq('six alerts at once: four toasts, the newest', ['Burst 2', 'Burst 3', 'Burst 4', 'Burst 5'],
    await dash.$$eval('#toasts .toast .toast-rule', l => l.map(e => e.textContent)));
  await expectWithin('toasts leave by themselves (~8 s)', 12000, async () => (await dash.$$('#toasts .toast')).length === 0);

  // ---------------- a failing webhook: the badge and the delivery log ----------------
  // a receiver on loopback that answers 500: one attempt, one failure disables the rule
  // (HERENOW_WEBHOOK_ATTEMPTS=1, HERENOW_WEBHOOK_DISABLE_AFTER=1 in the wrapper)
  let hits = 0;
  const receiver = createServer((req, res) => { hits++; req.resume(); res.writeHead(500); res.end('nope'); });
  await listen(receiver, 0);
  const hook = await api(`/widgets/${WID}/rules`, 'POST', { name: 'Failing hook', match: 'all',
    conditions: [{ field: 'url', op: 'glob', value: '*/fail*' }],
    actions: [{ type: 'webhook', url: `http://127.0.0.1:${receiver.address().port}/hook` }] });
  eq('a rule with a webhook to a receiver that answers 500', 201, hook.status);
  await dash.click('#tab-rules');
  await expectWithin('… listed, enabled', 3000, async () => dash.$eval(`#rules-list li[data-id="${hook.json.id}"] .rule-enabled`, el => el.checked));
  await new Promise(r => setTimeout(r, 1500));      // HERENOW_RULES_RELOAD_MS=200: the engine has it
  pv('failEEEE0001', 1, '/fail', 'Fail', '--vid', 'vis-fail');
  const failing = await expectWithin('the delivery failed: the rule is disabled with a failing_reason', 10000, async () => {
    const r = defOf((await rules()).find(x => x.id === hook.json.id));
    return r.enabled === false && r.failing_reason ? r : null;
  });
  await dash.click('#rules-refresh');
  if (failing) {
    await expectWithin('… the list shows "failing: <reason>" and the switch off', 3000, async () =>
      (await dash.textContent(`#rules-list li[data-id="${hook.json.id}"] .failing`)) === `failing: ${failing.failing_reason}`
      && !(await dash.$eval(`#rules-list li[data-id="${hook.json.id}"] .rule-enabled`, el => el.checked)));
  }
  await dash.click(`#rules-list li[data-id="${hook.json.id}"] .rule-log`);
  const logRow = await expectWithin('… its delivery log: one failed delivery, the receiver\'s 500', 3000, async () => {
    const cells = await dash.$$eval('#deliveries tbody tr td', tds => tds.map(td => td.textContent));
    return cells.length === 5 ? cells : null;
  });
  if (logRow) check('… rule.fired, failed, 1 attempt, 500', logRow[1] === 'rule.fired' && logRow[2] === 'failed' && logRow[3] === '1'
    && logRow[4].startsWith('500'), logRow);
  check('the receiver was called once', hits === 1, hits);
  await shot(dash, 'rule-failing.png');
  receiver.close();

  // ---------------- a long name, the delivery log, delete with a confirmation ----------------
  await dash.click('#tab-rules');
  const long = await api(`/widgets/${WID}/rules`, 'POST', { name: LONG_NAME, enabled: false, match: 'any',
    conditions: [{ field: 'country', op: 'in', value: ['DE', 'FR'] }], actions: [{ type: 'alert', text: 'x' }] });
  eq('a second rule made by the API', 201, long.status);
  await dash.click('#rules-refresh');
  await expectWithin('the long name is cut inside its row', 3000, async () => dash.$eval(`#rules-list li[data-id="${long.json.id}"] .rule-name`,
    el => el.scrollWidth > el.clientWidth && el.getBoundingClientRect().right <= el.closest('li').getBoundingClientRect().right));
  await dash.click(`#rules-list li[data-id="${made.id}"] .rule-log`);
  await expectWithin('the delivery log of a rule without a webhook: none yet', 3000, async () =>
    (await dash.textContent('#rule-pane')).includes('No deliveries yet.'));
  for (const width of [375]) {
    await dash.setViewportSize({ width, height: 800 });
    await dash.click(`#rules-list li[data-id="${made.id}"] .rule-edit`);
    eq(`at ${width} px nothing of the Rules view reaches past the viewport`, [], await overflow(dash));
    await shot(dash, 'rule-editor-phone.png', { fullPage: true });
    await dash.click('#tab-live');
    await dash.click(row('tagBBBB0001'));
    await dash.waitForSelector('#anno-tags', { state: 'visible', timeout: 5000 });
    eq(`at ${width} px the details' notes fit`, [], await overflow(dash));
    await shot(dash, 'visitor-details-phone.png');
    await dash.click('#d-close');
    await dash.click('#tab-rules');
  }
  await dash.setViewportSize({ width: 1280, height: 900 });
  await dash.click(`#rules-list li[data-id="${long.json.id}"] .rule-del`);
  await expectWithin('deleted after a confirmation: gone from the list and the API', 3000, async () =>
    !(await dash.$(`#rules-list li[data-id="${long.json.id}"]`)) && (await rules()).length === 2);
  check('… the confirmation named the rule', dialogs.some(m => m.includes(LONG_NAME)), dialogs);

  // the refused definition's 400 is the only failed request Chromium reports
  eq('no console error or warning (but the 400 of the bad regex), no CSP violation, no page error', [],
    problems.filter(p => !/^console error: Failed to load resource: the server responded with a status of 400/.test(p)));
  await ctx.close();
});
