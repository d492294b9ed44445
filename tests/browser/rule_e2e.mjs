// tests/browser/rule_e2e.mjs: a rule end to end (issue 16's first test) — a
// visitor's real page and the dashboard in two Chromiums, a webhook receiver
// on loopback, two herenow-api processes (tests/integration/test_rule_e2e.sh
// starts them and the rule: url glob */pricing* and time on page ≥ 30 s;
// actions webhook, alert, invitation).
//
//   The visitor opens /pricing.html and stays, sending nothing more than the
//   script does. At 30 s on the page, with no beacon of the visitor's at that
//   instant, the rule fires: the invitation (the rule's text) is on the
//   visitor's page, the alert toast on the dashboard, one signed POST at the
//   receiver naming the session — once, though two engines watch.
// Screenshots of the bubble and the toast go to $HN_ARTIFACTS.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { check, eq, expectWithin, guard, launch, newPage, signIn, startSite } from './lib.mjs';

const env = k => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const API = env('HN_API');
const COLLECTOR = env('HN_COLLECTOR');
const TOKEN = env('HN_TOKEN');
const WID = env('HN_WIDGET_ID');
const KEY = env('HN_WIDGET_KEY');
const RLOG = env('HN_RECEIVER_LOG');       // the receiver's JSON lines
const RULE = env('HN_RULE_NAME');
const INVITE = env('HN_INVITE_TEXT');
const ALERT = env('HN_ALERT_TEXT');
const WAIT_S = Number(env('HN_RULE_SECONDS'));
const ART = process.env.HN_ARTIFACTS || 'build/artifacts/rule-e2e';
const UI = '[data-herenow-chat-ui]';
const shot = (page, name) => page.screenshot({ path: join(ART, name) });
const received = () => readFileSync(RLOG, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l))
  .filter(r => r.event === 'rule.fired');

guard(async () => {
  mkdirSync(ART, { recursive: true });
  const site = await startSite({ port: 0, otherPort: 0, scriptSrc: `${COLLECTOR}/h.js`, key: KEY });

  const agentCtx = await launch('rule-agent', { viewport: { width: 1280, height: 800 } });
  const dash = await newPage(agentCtx);
  const errors = [];
  dash.on('pageerror', e => errors.push(e.message));
  await signIn(dash, API, TOKEN, WID);

  const visCtx = await launch('rule-visitor', { real: true, locale: 'en-US', viewport: { width: 1100, height: 800 } });
  const vis = await newPage(visCtx);
  vis.on('pageerror', e => errors.push(`visitor: ${e.message}`));
  const t0 = Date.now();
  await vis.goto(`${site.origin}/pricing.html`);
  const sid = await expectWithin('the visitor has a session', 5000,
    async () => (await vis.evaluate(() => sessionStorage.getItem('herenow') || '')).split(' ')[0] || null);
  await expectWithin('… and is on the dashboard\'s live list', 5000, () => dash.$(`#rows tr[data-sid="${sid}"]`));
  check(`nothing fires before ${WAIT_S} s on the page`, received().length === 0 && !(await vis.$(`${UI} .b`)),
    received());

  // the rule's instant: WAIT_S after the page view; everything within 2 s of it
  const bubble = await expectWithin(`the invitation is on the visitor's page at ${WAIT_S} s (within 2 s)`,
    WAIT_S * 1000 + 6000, () => vis.$(`${UI} .b`));
  const tb = (Date.now() - t0) / 1000;
  check(`… not before ${WAIT_S} s, not after ${WAIT_S + 4} s (at ${tb.toFixed(1)} s)`, tb >= WAIT_S && tb <= WAIT_S + 4, tb);
  if (bubble) {
    eq('… with the rule\'s text, as text', INVITE, await vis.textContent(`${UI} .b .x`));
    await shot(vis, 'visitor-rule-invitation.png');
  }
  const toast = await expectWithin('the alert toast is on the dashboard', 3000, async () => {
    const t = await dash.$(`#toasts .toast[data-sid="${sid}"]`);
    return t && { rule: await t.$eval('.toast-rule', e => e.textContent), text: await t.$eval('.toast-text', e => e.textContent) };
  });
  if (toast) {
    eq('… naming the rule, its text as text', { rule: RULE, text: ALERT }, toast);
    await shot(dash, 'dashboard-rule-alert.png');
  }
  const hook = await expectWithin('the webhook reached the receiver', 5000, () => received()[0]);
  if (hook) {
    const body = JSON.parse(hook.body);
    eq('… signed (v1 HMAC-SHA256 of timestamp.body, the rule\'s secret), fresh', [true, true], [hook.sig_ok, hook.ts_ok]);
    eq('… naming the rule and the visitor\'s session and page',
      [RULE, sid, true], [body.rule.name, body.session.session_id, body.session.url.endsWith('/pricing.html')]);
  }
  // once: two engines saw the instant; 3 s more and still one of each
  await new Promise(r => setTimeout(r, 3000));
  eq('once, though two api processes run the rule: one POST, one invitation bubble',
    [1, 1], [new Set(received().map(r => r.delivery)).size, (await vis.$$(`${UI} .b`)).length]);
  eq('no page error', [], errors);
  await visCtx.close();
  await agentCtx.close();
  site.close();
});
