// api/www/rules.js: the Rules view (docs/RULES.md, docs/DASHBOARD.md).
//
//   GET …/rules ──► the list: name, enabled toggle (PUT with enabled flipped), fired,
//                   last fired, "failing: <reason>", Edit, Deliveries, Delete (confirm)
//   editor: name, match all/any, conditions (field → its ops → a value of the right kind),
//           actions (webhook, alert, invite) ──► POST …/rules (201: the webhook secret,
//           shown once) or PUT …/rules/:id; a 400's reason is shown next to the form
//   GET …/rules/:id/deliveries ──► the rule's delivery log, newest first
//
// Names and texts are agents' words: text nodes only.
import { h, put, api, state, $, fmtInt, timeEl, dateTimeFmt } from './app.js';
import { initAlertPrefs } from './alerts.js';

const STR_OPS = ['equals', 'not_equals', 'contains', 'not_contains', 'starts_with', 'glob', 'regex'];
// field → [ops, value kind]; kind: text, number, list (comma separated), or a fixed choice
const FIELDS = {
  url: [STR_OPS, 'text'], title: [STR_OPS, 'text'], referrer: [STR_OPS, 'text'], landing_page: [STR_OPS, 'text'],
  utm_source: [STR_OPS, 'text'], utm_medium: [STR_OPS, 'text'], utm_campaign: [STR_OPS, 'text'],
  country: [['in', 'not_in'], 'list'],
  device: [['in', 'not_in'], 'list'],
  browser: [['in', 'not_in', 'equals', 'contains'], 'text-or-list'],
  os: [['in', 'not_in', 'equals', 'contains'], 'text-or-list'],
  language: [['in', 'not_in', 'equals', 'contains'], 'text-or-list'],
  visitor: [['is'], 'visitor'],
  page_views: [['gte', 'lte'], 'number'],
  time_on_page: [['gte'], 'number'],
  time_on_site: [['gte'], 'number'],
  event: [['equals', 'in'], 'text-or-list'],
};
const HINT = {
  country: 'DE, FR, US', device: 'desktop, mobile, tablet, bot, other', browser: 'Chrome, Firefox',
  os: 'Linux, iOS', language: 'de, fr', event: 'signup_click', page_views: 'pages', time_on_page: 'seconds',
  time_on_site: 'seconds', url: '*/pricing*',
};

const REFRESH_MS = 15000;
const view = { rules: [], gen: 0, editing: null, loaded: false };

const rpath = (rest = '') => `/widgets/${state.widget.id}/rules${rest}`;
// A rule as listed: its definition's members at the top, or under `definition`.
const defOf = r => ({ ...(r.definition || {}), ...r });

export function initRules() {
  $('rule-new').addEventListener('click', () => edit(null));
  $('rules-refresh').addEventListener('click', () => loadRules());
  initAlertPrefs();
  // fired counts, last fired, failing: the list (not the editor) read again now and then
  setInterval(() => { if (state.view === 'rules' && state.widget && !document.hidden) loadRules(); }, REFRESH_MS);
}

export function resetRules() {
  view.gen++;
  view.rules = [];
  view.editing = null;
  view.loaded = false;
  put($('rules-list'));
  put($('rule-pane'));
  $('rules-msg').textContent = '';
}

export async function loadRules() {
  if (!state.widget) return;
  const gen = ++view.gen;
  let r;
  try {
    r = await api(rpath());
  } catch (e) {
    if (gen !== view.gen) return;
    say(e.status === 404 ? 'This server has no rules yet (an older api).' : `Could not load the rules: ${e.message}`, true);
    return;
  }
  if (gen !== view.gen) return;
  view.rules = (r.rules || []).map(defOf);
  view.loaded = true;
  renderList();
  if (!view.editing && !$('rule-pane').firstChild) put($('rule-pane'), h('p', { class: 'muted', text: 'Pick a rule to edit it, or make a new one.' }));
}

function say(text, bad) {
  const el = $('rules-msg');
  el.textContent = text;
  el.className = bad ? 'error' : 'muted';
}

function renderList() {
  const list = $('rules-list');
  if (!view.rules.length) return put(list, h('li', { class: 'muted empty-rules', text: 'No rules yet: New rule makes one.' }));
  put(list, view.rules.map(r => h('li', { class: `rule-item${r.enabled ? '' : ' off'}${view.editing === r.id ? ' editing' : ''}`, dataset: { id: r.id } },
    h('div', { class: 'rule-line' },
      h('label', { class: 'switch', title: r.enabled ? 'Enabled: click to disable' : 'Disabled: click to enable' },
        h('input', { type: 'checkbox', class: 'rule-enabled', checked: !!r.enabled, 'aria-label': `${r.name}: enabled`,
          onchange: e => setEnabled(r, e.target.checked, e.target) }),
        h('span', { text: r.enabled ? 'on' : 'off' })),
      h('button', { type: 'button', class: 'link rule-name', dir: 'auto', title: r.name, text: r.name, onclick: () => edit(r) })),
    r.failing_reason ? h('p', { class: 'failing', title: r.failing_reason }, h('strong', { text: 'failing: ' }), r.failing_reason) : null,
    h('p', { class: 'muted rule-stats' },
      h('span', { class: 'rule-fired', text: `fired ${fmtInt(r.fired || 0)}×` }), ' · last ',
      r.last_fired_at ? timeEl(r.last_fired_at, dateTimeFmt) : h('span', { text: 'never' })),
    h('div', { class: 'rule-actions' },
      h('button', { type: 'button', class: 'quiet rule-edit', text: 'Edit', onclick: () => edit(r) }),
      h('button', { type: 'button', class: 'quiet rule-log', text: 'Deliveries', onclick: () => deliveries(r) }),
      h('button', { type: 'button', class: 'quiet danger rule-del', text: 'Delete', onclick: () => del(r) })))));
}

// The body of a PUT/POST: the definition members only.
function bodyOf(r) {
  return { name: r.name, enabled: !!r.enabled, match: r.match || 'all', conditions: r.conditions || [], actions: r.actions || [] };
}

async function setEnabled(r, on, box) {
  box.disabled = true;
  try {
    await api(rpath(`/${r.id}`), { method: 'PUT', body: { ...bodyOf(r), enabled: on } });
    say(`${on ? 'Enabled' : 'Disabled'}: ${r.name}`);
  } catch (e) {
    say(`Could not ${on ? 'enable' : 'disable'} ${r.name}: ${e.message}`, true);
  }
  await loadRules();
}

async function del(r) {
  if (!confirm(`Delete the rule "${r.name}"?\n\nIts delivery log goes with it.`)) return;
  try {
    await api(rpath(`/${r.id}`), { method: 'DELETE', raw: true });
    say(`Deleted: ${r.name}`);
    if (view.editing === r.id) { view.editing = null; put($('rule-pane')); }
  } catch (e) {
    say(`Could not delete ${r.name}: ${e.message}`, true);
  }
  await loadRules();
}

// ---- the editor -------------------------------------------------------------------

function edit(r) {
  view.editing = r ? r.id : 'new';
  renderList();
  const rule = r ? bodyOf(r) : { name: '', enabled: true, match: 'all', conditions: [{ field: 'url', op: 'glob', value: '' }], actions: [] };
  const act = type => (rule.actions || []).find(a => a.type === type);
  const field = (label, el, cls) => h('label', { class: `fld ${cls || ''}` }, h('span', { text: label }), el);

  const name = h('input', { id: 're-name', type: 'text', value: rule.name, maxlength: 200, required: true, dir: 'auto' });
  const enabled = h('input', { id: 're-enabled', type: 'checkbox', checked: rule.enabled });
  const match = h('select', { id: 're-match' },
    h('option', { value: 'all', text: 'all conditions hold' }), h('option', { value: 'any', text: 'any condition holds' }));
  match.value = rule.match === 'any' ? 'any' : 'all';
  const conds = h('ol', { id: 're-conds', class: 're-conds' });
  for (const c of rule.conditions || []) conds.append(condRow(c));
  const addCond = h('button', { type: 'button', id: 're-add-cond', text: '+ condition', onclick: () => {
    conds.append(condRow({ field: 'url', op: 'contains', value: '' }));
    conds.lastChild.querySelector('.c-value').focus();
  } });

  const wh = act('webhook'), al = act('alert'), inv = act('invite');
  const whOn = h('input', { type: 'checkbox', id: 're-wh-on', checked: !!wh });
  const whUrl = h('input', { type: 'url', id: 're-wh-url', value: wh ? wh.url : '', placeholder: 'https://hooks.example.com/herenow', maxlength: 2048 });
  const alOn = h('input', { type: 'checkbox', id: 're-al-on', checked: !!al });
  const alText = h('input', { type: 'text', id: 're-al-text', value: al ? al.text : '', maxlength: 500, dir: 'auto', placeholder: 'A visitor is reading pricing' });
  const alSound = h('input', { type: 'checkbox', id: 're-al-sound', checked: al ? al.sound !== false : true });
  const alNotify = h('input', { type: 'checkbox', id: 're-al-notify', checked: al ? al.notify !== false : true });
  const invOn = h('input', { type: 'checkbox', id: 're-inv-on', checked: !!inv });
  const invText = h('input', { type: 'text', id: 're-inv-text', value: inv ? inv.text : '', maxlength: 500, dir: 'auto', placeholder: 'Questions about our plans?' });
  const invAgent = h('input', { type: 'text', id: 're-inv-agent', value: inv && inv.agent_name ? inv.agent_name : '', maxlength: 200, placeholder: 'the widget\'s agent name' });

  const err = h('p', { id: 're-error', class: 'error', role: 'alert', hidden: true });
  const save = h('button', { type: 'submit', id: 're-save', class: 'primary', text: r ? 'Save' : 'Create rule' });
  const form = h('form', { class: 'rule-form', id: 'rule-form', novalidate: true, onsubmit: async e => {
    e.preventDefault();
    const body = {
      name: name.value.trim(), enabled: enabled.checked, match: match.value,
      conditions: [...conds.children].map(readCond),
      actions: [
        whOn.checked ? { type: 'webhook', url: whUrl.value.trim() } : null,
        alOn.checked ? { type: 'alert', text: alText.value.trim(), sound: alSound.checked, notify: alNotify.checked } : null,
        invOn.checked ? { type: 'invite', text: invText.value.trim(), ...(invAgent.value.trim() ? { agent_name: invAgent.value.trim() } : {}) } : null,
      ].filter(Boolean),
    };
    err.hidden = true;
    save.disabled = true;
    try {
      const out = await api(r ? rpath(`/${r.id}`) : rpath(), { method: r ? 'PUT' : 'POST', body });
      say(`${r ? 'Saved' : 'Created'}: ${body.name}`);
      await loadRules();
      const fresh = view.rules.find(x => String(x.id) === String(out && out.id != null ? out.id : r && r.id));
      if (fresh) edit(fresh);
      if (!r && out && out.webhook_secret) showSecret(out.webhook_secret);
    } catch (e2) {
      // the API's reason, as it says it (400 {"error": "…"})
      err.textContent = e2.status === 400 ? e2.message : `${e2.message} (HTTP ${e2.status || '–'})`;
      err.hidden = false;
    } finally {
      save.disabled = false;
    }
  } },
  h('h2', { text: r ? `Edit rule ${r.id}` : 'New rule' }),
  h('div', { class: 're-top' }, field('Name', name, 'grow'), h('label', { class: 'check' }, enabled, ' enabled')),
  h('fieldset', null, h('legend', null, 'When ', match),
    conds, addCond),
  h('fieldset', { class: 're-actions' }, h('legend', { text: 'Then' }),
    h('div', { class: 're-act' }, h('label', { class: 'check' }, whOn, ' Webhook (signed POST)'), field('URL', whUrl, 'grow')),
    h('div', { class: 're-act' }, h('label', { class: 'check' }, alOn, ' Dashboard alert'), field('Text', alText, 'grow'),
      h('label', { class: 'check' }, alSound, ' sound'), h('label', { class: 'check' }, alNotify, ' notification')),
    h('div', { class: 're-act' }, h('label', { class: 'check' }, invOn, ' Chat invitation'), field('Text', invText, 'grow'),
      field('Agent name', invAgent))),
  err,
  h('div', { class: 're-buttons' }, save,
    h('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: () => { view.editing = null; renderList(); put($('rule-pane')); } })),
  h('div', { id: 're-secret' }));
  put($('rule-pane'), form);
  name.focus();
}

function condRow(c) {
  const fieldSel = h('select', { class: 'c-field', 'aria-label': 'field' }, Object.keys(FIELDS).map(f => h('option', { value: f, text: f })));
  fieldSel.value = FIELDS[c.field] ? c.field : 'url';
  const opSel = h('select', { class: 'c-op', 'aria-label': 'operator' });
  const valBox = h('span', { class: 'c-valbox' });
  const li = h('li', { class: 're-cond' }, fieldSel, opSel, valBox,
    h('button', { type: 'button', class: 'quiet c-remove', 'aria-label': 'Remove this condition', text: '×', onclick: () => li.remove() }));
  const fill = (value) => {
    const [ops, kind] = FIELDS[fieldSel.value];
    const op = ops.includes(opSel.value) ? opSel.value : ops.includes(c.op) ? c.op : ops[0];
    put(opSel, ops.map(o => h('option', { value: o, text: o.replace('_', ' ') })));
    opSel.value = op;
    const asList = kind === 'list' || (kind === 'text-or-list' && (op === 'in' || op === 'not_in'));
    let input;
    if (kind === 'visitor') {
      input = h('select', { class: 'c-value', 'aria-label': 'value' }, h('option', { value: 'new', text: 'new' }), h('option', { value: 'returning', text: 'returning' }));
      input.value = value === 'returning' ? 'returning' : 'new';
    } else if (kind === 'number') {
      const max = fieldSel.value === 'page_views' ? 100000 : 86400;
      input = h('input', { class: 'c-value', type: 'number', min: fieldSel.value === 'page_views' ? 0 : 1, max, step: 1, 'aria-label': 'value',
        placeholder: HINT[fieldSel.value], value: typeof value === 'number' ? value : '' });
    } else {
      const text = Array.isArray(value) ? value.join(', ') : value == null ? '' : String(value);
      input = h('input', { class: 'c-value', type: 'text', 'aria-label': asList ? 'values, comma separated' : 'value', dir: 'auto',
        maxlength: 512, placeholder: asList ? `${HINT[fieldSel.value] || 'a, b'} (comma separated)` : HINT[fieldSel.value] || '', value: text });
    }
    input.dataset.kind = asList ? 'list' : kind === 'text-or-list' ? 'text' : kind;
    put(valBox, input);
  };
  fieldSel.addEventListener('change', () => { opSel.value = ''; fill(''); });
  opSel.addEventListener('change', () => fill(valBox.firstChild.value));
  opSel.value = c.op;
  fill(c.value);
  return li;
}

function readCond(li) {
  const input = li.querySelector('.c-value');
  const kind = input.dataset.kind, raw = input.value;
  let value = raw;
  if (kind === 'number') value = raw === '' ? null : Number(raw);
  else if (kind === 'list') value = raw.split(',').map(x => x.trim()).filter(Boolean);
  return { field: li.querySelector('.c-field').value, op: li.querySelector('.c-op').value, value };
}

// The webhook secret: once, right after creation, with a copy button.
function showSecret(secret) {
  const code = h('code', { id: 're-secret-value', text: secret });
  const msg = h('span', { class: 'muted', role: 'status' });
  put($('re-secret'), h('div', { class: 'secret' },
    h('p', null, h('strong', { text: 'Webhook secret' }), ' — shown this once: keep it where your receiver checks signatures.'),
    code,
    h('button', { type: 'button', id: 're-secret-copy', text: 'Copy', onclick: async () => {
      try { await navigator.clipboard.writeText(secret); msg.textContent = 'Copied.'; } catch {
        getSelection().selectAllChildren(code);        // no clipboard here: selected for Ctrl+C
        msg.textContent = 'Selected: press Ctrl+C.';
      }
    } }), msg));
}

// ---- the delivery log -----------------------------------------------------------------

async function deliveries(r) {
  view.editing = r.id;
  renderList();
  const pane = $('rule-pane');
  put(pane, h('h2', { text: `Deliveries of ${r.name}` }), h('p', { class: 'muted', text: 'Loading…' }));
  let out;
  try {
    out = await api(rpath(`/${r.id}/deliveries?limit=50`));
  } catch (e) {
    if (view.editing !== r.id) return;
    put(pane, h('h2', { text: `Deliveries of ${r.name}` }),
      h('p', { class: 'error', text: e.status === 404 ? 'No delivery log on this server.' : e.message }));
    return;
  }
  if (view.editing !== r.id) return;
  const list = out.deliveries || [];
  put(pane, h('h2', { dir: 'auto', text: `Deliveries of ${r.name}` }),
    list.length ? h('table', { class: 'deliveries', id: 'deliveries' },
      h('thead', null, h('tr', null, ['Time', 'Event', 'State', 'Attempts', 'Answer'].map(t => h('th', { scope: 'col', text: t })))),
      h('tbody', null, list.map(d => h('tr', { dataset: { state: d.state || '' } },
        h('td', null, timeEl(d.created_at, dateTimeFmt)),
        h('td', { text: d.event || '' }),
        h('td', null, h('span', { class: `chip dl-${d.state}`, text: d.state || '' })),
        h('td', { text: fmtInt(d.attempts ?? 0) }),
        h('td', { class: 'dl-answer', title: d.last_error || '', text: [d.last_status, d.last_error].filter(x => x != null && x !== '').join(' · ') || '–' })))))
      : h('p', { class: 'muted', text: 'No deliveries yet.' }),
    out.next_cursor ? h('p', { class: 'muted', text: 'The newest 50.' }) : null);
}
