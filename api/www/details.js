// api/www/details.js: a visitor's details in a <dialog> — the session's facts,
// its timeline (page views, events and the chat of both sides), earlier
// sessions, Start chat and Deactivate. Split from app.js, whose helpers it
// uses; text only, as everywhere.
import { h, put, api, state, $, rows, remove, timeEl, urlEl, deviceText, flag, fmtInt, fmtDuration,
  dateTimeFmt } from './app.js';
import { openChat } from './chat.js';
import { annoSection } from './notes.js';


export const details = { sid: null, opener: null, timer: null, last: '', gen: 0, msg: '' };

export function openDetails(sid, opener) {
  const dlg = $('details');
  details.sid = sid;
  // an earlier session opened from inside the dialog keeps the first opener
  details.opener = opener || (dlg.open ? details.opener : null);
  details.last = '';
  details.msg = '';
  details.gen++;
  $('d-title').textContent = `Visitor ${sid}`;
  put($('d-body'), h('p', { class: 'muted', text: 'Loading…' }));
  if (!dlg.open) dlg.showModal();
  $('d-close').focus();
  loadDetails();
}

export function closeDetails() {
  clearTimeout(details.timer);
  details.timer = null;
  details.gen++;
  const sid = details.sid;
  details.sid = null;
  // back to the row it was opened from (if it is still on the list)
  const row = rows.get(sid);
  const back = details.opener && details.opener.isConnected ? details.opener : row ? row.tr : null;
  if (back) back.focus();
}

async function loadDetails() {
  clearTimeout(details.timer);
  const gen = details.gen, sid = details.sid;
  let d;
  try {
    d = await api(`/sessions/${encodeURIComponent(sid)}?widget=${state.widget.id}`);
  } catch (e) {
    if (gen !== details.gen) return;
    put($('d-body'), h('p', { class: 'error', text: e.status === 404 ? 'No such session (it may not be written yet).' : e.message }));
    if (e.status === 404 || e.status >= 500 || e.status === 0) details.timer = setTimeout(loadDetails, 2000);
    return;
  }
  if (gen !== details.gen) return;
  // the chat, both sides, for the timeline (none yet: 404 or empty)
  try {
    d.messages = (await api(`/sessions/${encodeURIComponent(sid)}/messages?widget=${state.widget.id}&limit=200`)).messages;
  } catch { /* no chat */ }
  if (gen !== details.gen) return;
  const key = JSON.stringify(d);
  if (key !== details.last) {       // re-render only when something changed (keeps scroll)
    details.last = key;
    renderDetails(d);
  }
  // Still on the site, or not written to PostgreSQL yet: look again soon.
  if (d.source === 'redis') details.timer = setTimeout(loadDetails, 1500);
  else if (d.status !== 'gone') details.timer = setTimeout(loadDetails, 5000);
}

// The live list saw this session change: refresh the details a little later
// (the drain writes PostgreSQL a second or so behind).
export function detailsLiveChanged() {
  clearTimeout(details.timer);
  details.timer = setTimeout(loadDetails, 1200);
}

function renderDetails(d) {
  const status = d.status || 'gone';
  $('d-title').textContent = d.visitor_name ? `${d.visitor_name}` : `Visitor ${d.visitor_id || d.session_id}`;
  const fact = (label, ...value) => h('div', null, h('dt', { text: label }), h('dd', null, ...value));
  const loc = [flag(d.country), d.country, d.region, d.city].filter(Boolean).join(' ');
  const facts = h('dl', { class: 'facts' },
    fact('Status', h('span', { class: `dot ${status}`, 'aria-hidden': 'true' }), ` ${status}`),
    fact('Session', h('code', { text: d.session_id })),
    fact('Visitor', h('code', { text: d.visitor_id || '–' })),
    d.visitor_email || d.visitor_phone ? fact('Contact', [d.visitor_email, d.visitor_phone].filter(Boolean).join(' · ')) : null,
    fact('Location', `${loc || '–'}${d.ip ? ` · ${d.ip}` : ''}`),
    fact('Device', deviceText(d), d.screen_width ? ` · ${d.screen_width}×${d.screen_height}` : '', d.language ? ` · ${d.language}` : ''),
    fact('Landing page', urlEl(d.landing_page)),
    fact('Referrer', urlEl(d.referrer)),
    fact('Current page', h('span', { text: d.current_page_title || '' }), ' ', urlEl(d.current_page_url)),
    fact('Started', timeEl(d.started, dateTimeFmt)),
    fact('Last active', timeEl(d.last_active, dateTimeFmt)),
    d.ended ? fact('Ended', timeEl(d.ended, dateTimeFmt)) : null,
    fact('Engaged time', fmtDuration(d.engaged_s)),
    fact('Pages · events', `${fmtInt(d.page_views)} · ${fmtInt(d.events_count)}`),
    fact('Chat', d.has_chatted ? `yes · ${d.messages_sent || 0} messages` : 'no'));

  const actions = h('div', { class: 'd-actions' },
    status !== 'gone' ? h('button', { type: 'button', id: 'd-chat', text: d.conversation_id ? 'Open chat' : 'Start chat', onclick: () => { $('details').close(); openChat(d.session_id); } }) : null,
    status !== 'gone' ? h('button', { type: 'button', id: 'd-deactivate', class: 'danger', text: 'Deactivate session', onclick: () => deactivate(d.session_id) }) : null,
    h('button', { type: 'button', class: 'quiet', text: 'Refresh', onclick: () => { details.last = ''; loadDetails(); } }),
    h('span', { id: 'd-msg', class: 'muted', role: 'status', text: details.msg }));

  const note = d.source === 'redis'
    ? h('p', { class: 'note', text: 'Only the live snapshot so far: the history is written within a few seconds.' }) : null;

  put($('d-body'), facts, actions, note, annoSection(d),
    h('h3', { text: 'Timeline' }), timeline(d),
    d.truncated ? h('p', { class: 'note', text: 'More than 1,000 page views or events: the export has them all.' }) : null,
    h('section', { class: 'd-earlier' }, h('h3', { text: 'Earlier sessions' }), earlier(d.earlier_sessions || [])));
}

const EVENT_KIND = { ev: 'Event', id: 'Identified', hide: 'Tab hidden', show: 'Tab visible', end: 'Left', hb: 'Heartbeat' };

function timeline(d) {
  const chat = d.messages && d.messages.length ? d.messages : null;
  const items = [
    ...(d.pages || []).map((p, i) => ({ t: Date.parse(p.time), o: i, pv: p })),
    // a visitor's message is an event too: with the thread at hand, the thread's entry says more
    ...(d.events || []).filter(e => !(chat && e.type === 'msg')).map((e, i) => ({ t: Date.parse(e.time), o: 1e6 + i, ev: e })),
    ...(chat || []).map((m, i) => ({ t: Date.parse(m.sent_at), o: 2e6 + i, msg: m })),
  ].sort((a, b) => a.t - b.t || a.o - b.o);
  if (!items.length) return h('p', { class: 'muted', text: 'Nothing recorded yet.' });
  return h('ol', { class: 'timeline' }, items.map(it => {
    if (it.pv) {
      const p = it.pv;
      return h('li', { class: 'tl tl-pv', dataset: { type: 'pv' } },
        timeEl(p.time), h('span', { class: 'tl-kind', text: 'Page view' }),
        h('div', { class: 'tl-body' },
          h('span', { class: 'title', text: p.title || '(no title)' }), urlEl(p.url),
          h('span', { class: 'muted tl-dur', text: p.time_on_page_s == null ? 'last page' : `${fmtDuration(p.time_on_page_s)} on this page` })));
    }
    if (it.msg) {
      const m = it.msg;
      return h('li', { class: `tl tl-msg tl-msg-${m.sender}`, dataset: { type: 'msg' } },
        timeEl(m.sent_at), h('span', { class: 'tl-kind', text: 'Chat' }),
        h('div', { class: 'tl-body' },
          h('strong', { text: m.sender === 'agent' ? (m.agent || 'Agent') : 'Visitor' }),
          h('span', { class: 'x', text: m.text })));
    }
    const e = it.ev;
    return h('li', { class: `tl tl-ev tl-${e.type}`, dataset: { type: e.type, name: e.name || '' } },
      timeEl(e.time), h('span', { class: 'tl-kind', text: EVENT_KIND[e.type] || e.type }),
      h('div', { class: 'tl-body' },
        e.name ? h('strong', { class: 'ev-name', text: e.name }) : null,
        e.url ? urlEl(e.url) : null,
        props(e.data)));
  }));
}

// An event's properties, as key → value lines (values that are not strings as JSON).
function props(data) {
  if (!data || typeof data !== 'object') return null;
  const keys = Object.keys(data);
  if (!keys.length) return null;
  return h('dl', { class: 'props' }, keys.map(k => h('div', null,
    h('dt', { text: k }), h('dd', { text: typeof data[k] === 'string' ? data[k] : JSON.stringify(data[k]) }))));
}

function earlier(list) {
  if (!list.length) return h('p', { class: 'muted', text: 'None: this is the first session of this visitor.' });
  return h('ul', { class: 'earlier' }, list.map(e => h('li', null,
    h('button', { type: 'button', class: 'link', text: e.session_id, onclick: () => openDetails(e.session_id) }),
    ' ', timeEl(e.started, dateTimeFmt),
    h('span', { class: 'muted', text: ` · ${fmtInt(e.page_views)} pages · ${fmtDuration(e.engaged_s)}${e.has_chatted ? ' · chatted' : ''}` }),
    h('span', { class: 'url', text: e.landing_page || '' }))));
}

async function deactivate(sid) {
  if (!confirm(`Deactivate session ${sid}?\n\nIt leaves the live list now; the visitor's next beacon brings it back.`)) return;
  const say = text => {           // kept in details.msg: the next render shows it too
    details.msg = text;
    if ($('d-msg')) $('d-msg').textContent = text;
  };
  try {
    const r = await api(`/sessions/${encodeURIComponent(sid)}/deactivate?widget=${state.widget.id}`, { method: 'POST' });
    say(r.was_live ? 'Deactivated.' : 'Deactivated (it was not on the live list).');
    remove(sid);
    details.last = '';
    loadDetails();
  } catch (e) {
    say(`Could not deactivate: ${e.message}`);
  }
}
