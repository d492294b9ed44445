// api/www/chat.js: Start Chat in the dashboard (docs/CHAT.md, docs/DASHBOARD.md).
//
//   live row ── [Start chat] ──► drawer (compose the invitation) ── POST …/sessions/:sid/chat
//   drawer: thread (GET …/messages), input (POST …/messages), End chat (POST …/chat/close)
//   live updates of a session (messages_sent, chat state) ──► refresh its open thread,
//   unread badges, an optional sound and browser notification
//
// The visitor's words and the agents' are text nodes only (h() with `text`).
import { h, put, api, state, $, fmtInt } from './app.js';

const DEFAULT_INVITE = 'Hi! Can I help you with anything?';
const SOUND_KEY = 'herenow.chat.sound';
const NOTIFY_KEY = 'herenow.chat.notify';
const THREAD_POLL_MS = 1500;   // while the drawer is open: the drain writes a little behind

const STATE_TEXT = {
  invited: 'Invited', shown: 'Seen', accepted: 'Accepted', declined: 'Declined',
  expired: 'Expired', chatting: 'Chatting', closed: 'Closed',
};
const OPEN_STATES = new Set(['invited', 'shown', 'accepted', 'chatting']);

// fast: quick re-reads left while the thread is behind the live count
const drawer = { sid: null, gen: 0, timer: null, key: '', thread: [], fast: 0 };
const unread = new Map();       // session id → visitor messages not yet seen
const since = new Map();        // session id → {state, t}: when the chat state last changed
const lastCount = new Map();    // session id → visitor messages when last looked

// The chat part of a live item (the API's snapshot members, docs/API.md).
export function chatOf(v) {
  const c = v && typeof v.chat === 'object' && v.chat ? v.chat : {};
  const visitor = c.visitor_messages ?? v.messages_sent ?? 0;
  const agent = c.agent_messages ?? v.agent_messages ?? 0;
  return {
    conversation: c.conversation ?? v.chat_conversation ?? (typeof v.chat === 'string' ? v.chat : null),
    state: c.state ?? v.chat_state ?? null,
    visitor: +visitor || 0,
    messages: (+visitor || 0) + (+agent || 0),
  };
}

const canStart = v => v.status !== 'gone' && !OPEN_STATES.has(chatOf(v).state);

function chip(st, messages) {
  if (!st) return null;
  const text = st === 'chatting' ? `Chatting · ${fmtInt(messages)} msg${messages === 1 ? '' : 's'}` : STATE_TEXT[st] || st;
  return h('span', { class: `chip chat-${st}`, text });
}

// The live list's chat cell: state, "No messages yet" / "N messages", unread, Start chat.
export function chatCell(v) {
  const c = chatOf(v);
  const n = unread.get(v.session_id) || 0;
  return [
    chip(c.state, c.messages),
    h('span', { class: c.messages ? 'msgs' : 'msgs muted', text: c.messages ? `💬 ${fmtInt(c.messages)} message${c.messages === 1 ? '' : 's'}`
      : v.has_chatted && !c.state ? '💬 Chat opened' : '💬 No messages yet' }),
    n ? h('span', { class: 'badge', title: `${n} unread`, text: String(n) }) : null,
    h('span', { class: 'row-actions' },
      v._past   // a row of the past (timetravel.js): no one there to invite
        ? h('button', { type: 'button', class: 'start-chat', disabled: true, text: 'Start chat',
          title: 'This row is the past: go back to now to invite a visitor' })
        : canStart(v)
        ? h('button', { type: 'button', class: 'start-chat', dataset: { sid: v.session_id }, text: 'Start chat',
          onclick: e => { e.stopPropagation(); openChat(v.session_id, e.currentTarget); } })
        : c.conversation
          ? h('button', { type: 'button', class: 'quiet open-chat', dataset: { sid: v.session_id }, text: 'Open chat',
            onclick: e => { e.stopPropagation(); openChat(v.session_id, e.currentTarget); } })
          : null),
  ];
}

// A live item changed (enter/update/snapshot): unread counts, the open thread.
export function chatUpdate(v) {
  const c = chatOf(v);
  const was = since.get(v.session_id);
  if (!was || was.state !== c.state) since.set(v.session_id, { state: c.state, t: Date.now() });
  const before = lastCount.get(v.session_id);
  lastCount.set(v.session_id, c.visitor);
  if (before != null && c.visitor > before) {
    if (drawer.sid !== v.session_id || document.hidden) {
      unread.set(v.session_id, (unread.get(v.session_id) || 0) + c.visitor - before);
      alertAgent(v);
    }
    updateBadge();
  }
  if (drawer.sid === v.session_id) {
    const key = `${c.state}|${c.messages}|${v.status}`;
    if (key !== drawer.key) { drawer.key = key; drawer.fast = 15; loadThread(); }
  }
}

function updateBadge() {
  let n = 0;
  for (const k of unread.values()) n += k;
  const b = $('chat-unread');
  if (!b) return;
  b.hidden = n === 0;
  b.textContent = n ? `💬 ${fmtInt(n)} unread` : '';
}

function alertAgent(v) {
  if (localStorage.getItem(SOUND_KEY) === '1') beep();
  if (localStorage.getItem(NOTIFY_KEY) === '1' && 'Notification' in window && Notification.permission === 'granted' && document.hidden) {
    const who = v.name || v.visitor || v.session_id;
    const n = new Notification('herenow: new chat message', { body: `from ${who}`, tag: `herenow-${v.session_id}` });
    n.onclick = () => { window.focus(); openChat(v.session_id); n.close(); };
  }
}

let audio;
export function beep() {
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.08, audio.currentTime);
    g.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.25);
  } catch { /* no audio */ }
}

// ---- the drawer ---------------------------------------------------------------------

export function openChat(sid, opener) {
  const d = $('chat');
  drawer.sid = sid;
  drawer.opener = opener || null;
  drawer.gen++;
  drawer.key = '';
  drawer.fast = 15;
  drawer.thread = [];
  unread.delete(sid);
  updateBadge();
  d.hidden = false;
  d.dataset.sid = sid;
  document.body.classList.add('chat-open');   // the list makes room: no row under the drawer
  renderDrawer();
  loadThread();
  $('chat-text').focus();
}

export function closeChat() {
  const d = $('chat');
  clearTimeout(drawer.timer);
  drawer.gen++;
  drawer.sid = null;
  d.hidden = true;
  document.body.classList.remove('chat-open');
  if (drawer.opener && drawer.opener.isConnected) drawer.opener.focus();
}

function visitorOf(sid) { return state.visitors.get(sid); }

function renderDrawer() {
  const sid = drawer.sid;
  const v = visitorOf(sid) || { session_id: sid, status: 'gone' };
  const c = chatOf(v);
  const st = c.state;
  $('chat-title').textContent = v.name || `Visitor ${v.visitor || sid}`;
  const at = since.get(sid);
  const clock = st === 'invited' && at && at.state === st ? ` ${fmtSince(Date.now() - at.t)}` : '';
  put($('chat-state'), st ? h('span', { class: `chip chat-${st}`, text: (STATE_TEXT[st] || st) + clock + (st === 'chatting' ? ` · ${fmtInt(drawer.thread.length)} msgs` : '') }) : null,
    h('span', { class: 'muted', text: (st ? ' · ' : '') + (v.status === 'gone' ? 'left the site' : v.url || '') }));
  const inviting = !OPEN_STATES.has(st);
  $('chat-send').textContent = inviting ? 'Send invitation' : 'Send';
  $('chat-end').hidden = inviting;
  const ta = $('chat-text');
  if (inviting && !ta.value) ta.value = DEFAULT_INVITE;
  ta.disabled = inviting && v.status === 'gone';
  const list = $('chat-thread');
  const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  put(list, drawer.thread.length
    ? drawer.thread.map(m => h('li', { class: m.sender === 'agent' ? 'm agent' : 'm visitor', dataset: { id: m.id } },
      h('span', { class: 'who', text: m.sender === 'agent' ? (m.agent || 'Agent') : 'Visitor' }),
      h('span', { class: 'x', text: m.text }),
      h('time', { datetime: m.sent_at, text: m.sent_at ? new Date(m.sent_at).toLocaleTimeString() : '' })))
    : h('li', { class: 'muted empty', text: c.conversation ? 'No messages yet.' : 'No conversation yet: write an invitation.' }));
  if (atEnd) list.scrollTop = list.scrollHeight;
}

function fmtSince(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

async function loadThread() {
  clearTimeout(drawer.timer);
  const gen = drawer.gen, sid = drawer.sid;
  if (!sid) return;
  try {
    const r = await api(`/sessions/${encodeURIComponent(sid)}/messages?widget=${state.widget.id}&limit=200`);
    if (gen !== drawer.gen) return;
    drawer.thread = r.messages || [];
    setMsg('');
  } catch (e) {
    if (gen !== drawer.gen) return;
    if (e.status !== 404) setMsg(e.message);
  }
  renderDrawer();
  // The live list already counts a visitor message the drain has not written
  // yet: look again soon rather than at the next poll.
  const v = visitorOf(sid);
  const behind = v && chatOf(v).visitor > drawer.thread.filter(m => m.sender !== 'agent').length;
  const fast = behind && drawer.fast-- > 0;
  drawer.timer = setTimeout(loadThread, fast ? 200 : THREAD_POLL_MS);
}

function setMsg(text) { $('chat-msg').textContent = text; }

async function send() {
  const sid = drawer.sid, ta = $('chat-text');
  const text = ta.value.trim();
  if (!sid || !text || $('chat-send').disabled) return;   // Enter twice: once
  const inviting = $('chat-send').textContent === 'Send invitation';
  const path = `/sessions/${encodeURIComponent(sid)}/${inviting ? 'chat' : 'messages'}?widget=${state.widget.id}`;
  $('chat-send').disabled = true;
  try {
    await api(path, { method: 'POST', body: { text } });
    ta.value = '';
    setMsg(inviting ? 'Invitation sent.' : '');
  } catch (e) {
    setMsg(e.status === 409 ? `Not sent: ${e.message.replace(/_/g, ' ')}` : `Not sent: ${e.message}`);
  } finally {
    $('chat-send').disabled = false;
  }
  loadThread();
}

async function end() {
  const sid = drawer.sid;
  try {
    await api(`/sessions/${encodeURIComponent(sid)}/chat/close?widget=${state.widget.id}`, { method: 'POST', body: {} });
    setMsg('Chat closed.');
  } catch (e) { setMsg(e.message); }
  loadThread();
}

export function initChat() {
  $('chat-close').addEventListener('click', closeChat);
  $('chat-form').addEventListener('submit', e => { e.preventDefault(); send(); });
  $('chat-text').addEventListener('keydown', e => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(); }
    if (e.key === 'Escape') closeChat();
  });
  $('chat-end').addEventListener('click', end);
  const sound = $('chat-sound'), notify = $('chat-notify');
  sound.checked = localStorage.getItem(SOUND_KEY) === '1';
  notify.checked = localStorage.getItem(NOTIFY_KEY) === '1';
  sound.addEventListener('change', () => localStorage.setItem(SOUND_KEY, sound.checked ? '1' : '0'));
  notify.addEventListener('change', async () => {
    if (notify.checked && 'Notification' in window && Notification.permission === 'default') await Notification.requestPermission();
    const ok = notify.checked && 'Notification' in window && Notification.permission === 'granted';
    notify.checked = ok;
    localStorage.setItem(NOTIFY_KEY, ok ? '1' : '0');
  });
  $('chat-unread').addEventListener('click', () => {
    const [sid] = unread.keys();
    if (sid) openChat(sid);
  });
}

// Widget switch / sign-out: forget everything of the old widget.
export function resetChat() {
  if (drawer.sid) closeChat();
  unread.clear();
  lastCount.clear();
  since.clear();
  updateBadge();
}
