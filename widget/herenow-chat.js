/*
 * herenow-chat.js — the visitor's side of Start Chat (docs/CHAT.md, docs/WIDGET.md §8).
 *
 * Loaded by herenow.js, only for a chat-enabled widget (the collector answers
 * the page's first beacon with 200). It holds the downlink — an EventSource on
 * the collector's /v while the tab is visible — and on an invitation first
 * dispatches a cancelable `herenow:invite` on window: a site whose own chat
 * widget takes over calls preventDefault(). Otherwise it shows a bubble
 * (agent, message, Reply / ×) and on Reply a small chat panel, in a shadow
 * root so the site's CSS cannot reach it. Every text is set as text
 * (textContent), never as HTML. An `expire` (nobody answered the invitation
 * within the api's HERENOW_CHAT_INVITE_TTL_S) takes the bubble away if it is
 * still only an invitation, and dispatches `herenow:invite_expired`.
 *
 * The visitor's messages go up as beacons t=msg (x: text, ci: conversation);
 * the invitation's fate as t=ev invite_shown / invite_accepted /
 * invite_declined, chat_closed. The thread and the last event id live in
 * sessionStorage, so a reload or a new page of the session keeps the thread
 * and resumes the downlink where it stopped (the collector replays what came
 * meanwhile, once, in order).
 */
((win, doc) => {
  const core = win.herenow;
  if (!core || !core.x || core.c) return;
  const [KEY, loadSession, beacon] = core.x;
  const ORIGIN = new URL(doc.currentScript.src).origin;
  const STORE = 'herenow_chat';
  // a tab hidden this long lets go of its downlink (a page may set it shorter)
  const HIDDEN_CLOSE_MS = +win.herenowChatHiddenMs || 60 * 1000;
  const MAX_TEXT = 2000;

  // st: {s: session id, last: event id, c: conversation, a: agent, open: panel
  // shown, inv: pending invitation {id, c, a, x} or null, closed, t: [{me, a, x, id}]}
  let st;
  const sid = () => loadSession()[0];
  const save = () => {
    try { sessionStorage.setItem(STORE, JSON.stringify(st)); } catch (e) { /* memory only */ }
  };
  const restore = () => {
    try { st = JSON.parse(sessionStorage.getItem(STORE)); } catch (e) { st = 0; }
    if (!st || st.s != sid()) st = { s: sid(), t: [] };
  };

  // ---- the view: one host element, a shadow root, text only ------------------

  let host, root, bubble, panel, thread, input, unread = 0;
  const el = (tag, cls, text, parent) => {
    const e = doc.createElement(tag);
    if (cls) e.className = cls;
    if (typeof text == 'string') e.textContent = text;   // 0: no text
    if (parent) parent.append(e);
    return e;
  };
  const button = (cls, text, label, parent, fn) => {
    const b = el('button', cls, text, parent);
    b.type = 'button';
    if (label) b.setAttribute('aria-label', label);
    b.onclick = fn;
    return b;
  };
  const CSS = `
:host{all:initial}
*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.w{position:fixed;right:16px;bottom:16px;z-index:2147483647;display:flex;flex-direction:column;align-items:flex-end;gap:8px;max-width:calc(100vw - 32px)}
.b,.p{background:#fff;color:#1d2433;border-radius:12px;box-shadow:0 6px 24px rgba(0,0,0,.18);width:340px;max-width:100%}
.b{padding:12px 14px}
.a{font-weight:600;margin-bottom:4px;display:flex;justify-content:space-between;gap:8px}
.x{white-space:pre-wrap;overflow-wrap:anywhere;unicode-bidi:plaintext}
.r{display:flex;gap:8px;margin-top:10px}
button{cursor:pointer;border:0;border-radius:8px;padding:7px 12px;background:#eef0f4;color:#1d2433}
button.go{background:#2f6fed;color:#fff}
button.cl{background:none;padding:2px 6px;font-size:18px;line-height:1}
button:focus-visible,textarea:focus-visible{outline:2px solid #2f6fed;outline-offset:2px}
.p{display:flex;flex-direction:column;height:min(440px,70vh)}
.h{display:flex;justify-content:space-between;align-items:center;padding:10px 12px;border-bottom:1px solid #e5e7ec;font-weight:600}
.t{flex:1;overflow-y:auto;padding:10px 12px;display:flex;flex-direction:column;gap:6px}
.m{max-width:85%;padding:7px 10px;border-radius:10px;background:#eef0f4;align-self:flex-start}
.m.me{background:#2f6fed;color:#fff;align-self:flex-end}
.m .n{font-size:12px;opacity:.7}
.s{font-size:12px;color:#667;text-align:center}
form{display:flex;gap:8px;padding:10px 12px;border-top:1px solid #e5e7ec}
textarea{flex:1;resize:none;height:40px;border:1px solid #cfd3dc;border-radius:8px;padding:8px;color:#1d2433;background:#fff}
.u{background:#d33;color:#fff;border-radius:9px;padding:0 6px;font-size:12px;margin-left:6px}
@media (max-width:420px){.w{right:8px;bottom:8px;left:8px;align-items:stretch}.b,.p{width:auto}}`;

  const mount = () => {
    if (host) return;
    host = el('div', 0, 0, doc.body);
    host.setAttribute('data-herenow-chat-ui', '');
    root = host.attachShadow({ mode: 'open' });
    el('style', 0, CSS, root);
    root.wrap = el('div', 'w', 0, root);
  };

  const render = () => {
    mount();
    const w = root.wrap;
    w.textContent = '';
    bubble = panel = thread = input = null;
    if (st.inv && !st.open) {
      bubble = el('div', 'b', 0, w);
      bubble.setAttribute('role', 'dialog');
      bubble.setAttribute('aria-label', 'Chat invitation');
      const head = el('div', 'a', 0, bubble);
      el('span', 0, st.inv.a || 'Support', head);
      button('cl', '\u00d7', 'Dismiss', head, decline);
      el('div', 'x', st.inv.x, bubble);
      const row = el('div', 'r', 0, bubble);
      button('go', 'Reply', 0, row, accept).focus({ preventScroll: true });
    }
    if (st.open) {
      panel = el('div', 'p', 0, w);
      panel.setAttribute('role', 'dialog');
      panel.setAttribute('aria-label', 'Chat');
      const head = el('div', 'h', 0, panel);
      el('span', 0, st.a || 'Chat', head);
      button('cl', '\u00d7', 'Close chat', head, () => close(1));
      thread = el('div', 't', 0, panel);
      thread.setAttribute('role', 'log');
      thread.setAttribute('aria-live', 'polite');
      st.t.forEach(m => {
        const b = el('div', m.me ? 'm me' : 'm', 0, thread);
        if (!m.me) el('div', 'n', m.a || 'Support', b);
        el('div', 'x', m.x, b);
      });
      if (st.closed) el('div', 's', 'Chat closed', thread);
      thread.scrollTop = thread.scrollHeight;
      const form = el('form', 0, 0, panel);
      input = el('textarea', 0, 0, form);
      input.maxLength = MAX_TEXT;
      input.placeholder = 'Write a message\u2026';
      input.setAttribute('aria-label', 'Message');
      input.onkeydown = e => {
        if (e.key == 'Enter' && !e.shiftKey) {
          e.preventDefault();
          form.requestSubmit();
        }
        if (e.key == 'Escape') close(1);
      };
      button('go', 'Send', 0, form).type = 'submit';
      form.onsubmit = e => {
        e.preventDefault();
        send(input.value);
        input.value = '';
        input.focus();
      };
      input.focus({ preventScroll: true });
      unread = 0;
    } else if (unread) {
      const b = el('div', 'b', 0, w);
      const head = el('div', 'a', 0, b);
      const name = el('span', 0, st.a || 'Support', head);
      el('span', 'u', String(unread), name);
      const last = st.t[st.t.length - 1];
      el('div', 'x', last ? last.x : '', b);
      button('go', 'Open', 0, el('div', 'r', 0, b), () => open());
    }
    if (!w.firstChild) host.remove(), (host = 0);
  };

  // ---- actions -----------------------------------------------------------------

  const uuid = () =>
    crypto.randomUUID ? crypto.randomUUID()
      : ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, c =>
        (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));

  const ev = (name, c) => beacon('ev', { n: name, ci: c });

  const accept = () => {
    const inv = st.inv;
    st.inv = null;
    if (inv) ev('invite_accepted', inv.c);
    open();
  };

  const decline = () => {
    const inv = st.inv;
    st.inv = null;
    save();
    if (inv) ev('invite_declined', inv.c);
    render();
  };

  const open = () => {
    if (!st.c || st.closed) st.c = uuid(), st.closed = 0, st.t = [];   // a chat the visitor starts
    st.open = 1;
    save();
    render();
  };

  const close = byVisitor => {
    if (byVisitor && st.c && !st.closed) ev('chat_closed', st.c);
    st.open = 0;
    save();
    render();
  };

  const send = text => {
    // C0 controls but \n and \t: the collector refuses them (a pasted form
    // feed would lose the whole message)
    text = String(text == null ? '' : text).replace(/[\0-\x08\x0b-\x1f\x7f]/g, '').trim().slice(0, MAX_TEXT);
    if (!text) return;
    if (!st.c || st.closed) open();
    st.t.push({ me: 1, x: text });
    save();
    beacon('msg', { x: text, ci: st.c });
    render();
  };

  // ---- the downlink --------------------------------------------------------------

  // shown: an invitation whose invite_shown waits for `ready` — one replayed
  // with its expiry (a page back after the ttl) was never seen
  let es, hiddenTimer, retryTimer, retries = 0, live, shown;
  const onEvent = e => {
    let d;
    try { d = JSON.parse(e.data); } catch (err) { return; }
    if (e.lastEventId) st.last = e.lastEventId;
    if (e.type == 'invite') {
      st.c = d.conversation;
      st.a = d.agent;
      st.closed = 0;
      st.t = [{ a: d.agent, x: d.text, id: d.id }];
      const detail = { id: d.id, conversation: d.conversation, agent: d.agent, text: d.text };
      const taken = !win.dispatchEvent(new CustomEvent('herenow:invite', { detail, cancelable: true }));
      if (live) ev('invite_shown', d.conversation);
      else shown = d.conversation;
      st.inv = taken ? null : { id: d.id, c: d.conversation, a: d.agent, x: d.text };
    } else if (e.type == 'message') {
      if (d.conversation != st.c) st.c = d.conversation, st.closed = 0, st.t = [];
      if (!st.t.some(m => m.id == d.id)) st.t.push({ a: d.agent, x: d.text, id: d.id });
      st.a = d.agent || st.a;
      if (!st.open) unread++;
      win.dispatchEvent(new CustomEvent('herenow:message', { detail: d }));
    } else if (e.type == 'close') {
      if (d.conversation == st.c) st.closed = 1, st.inv = null;
    } else if (e.type == 'expire') {
      // unanswered too long: the bubble goes (an accepted one stays open)
      if (st.inv && st.inv.c == d.conversation) st.inv = null;
      if (shown == d.conversation) shown = 0;
      win.dispatchEvent(new CustomEvent('herenow:invite_expired', { detail: d }));
    }
    save();
    render();
  };

  const connect = () => {
    if (es || doc.hidden) return;
    const url = ORIGIN + '@HN_V@?k=' + encodeURIComponent(KEY) + '&s=' + encodeURIComponent(sid()) +
      // no position yet: everything of this session since the page began
      // (an invitation sent while this script was loading is not lost)
      (st.last ? '&last=' + encodeURIComponent(st.last) : '&since=' + Math.floor(performance.timeOrigin));
    const me = es = new EventSource(url);
    live = 0;
    ['invite', 'message', 'close', 'expire'].forEach(t => es.addEventListener(t, onEvent));
    // where the stream starts: a later downlink resumes from here even if
    // no event came on this one
    es.addEventListener('ready', e => {
      retries = 0;
      live = 1;
      if (shown) ev('invite_shown', shown), (shown = 0);
      try { st.last = JSON.parse(e.data).last || st.last; } catch (err) { /* keep */ }
      save();
    });
    // Any error (a 503 or 429 answer, which EventSource never retries, or a
    // lost connection, whose own retry would not carry our position): close
    // it and connect again with the last position, after a growing pause.
    es.onerror = () => {
      if (es != me) return;
      disconnect();
      retryTimer = setTimeout(connect, Math.min(30000, 1000 * 2 ** retries++) * (0.5 + Math.random()));
    };
  };
  const disconnect = () => {
    clearTimeout(retryTimer);
    if (es) es.close();
    es = 0;
  };

  // herenow('chat', 'open'|'close'|'send', text) · herenow('chat', 'accept' |
  // 'decline', conversation): a site's own chat widget reports what became of
  // an invitation it took over (conversation: detail.conversation of the
  // herenow:invite event; default the latest)
  core.c = (what, arg) => {
    if (what == 'open') open();
    if (what == 'close') close(1);
    if (what == 'send') send(arg);
    if (what == 'accept' || what == 'decline') {
      const c = arg || st.c;
      st.inv = null;
      save();
      render();
      if (c) ev(what == 'accept' ? 'invite_accepted' : 'invite_declined', c);
    }
  };

  restore();
  connect();
  if (st.open || st.inv) render();
  core.q.forEach(a => core.c(...a));
  core.q = [];
  doc.addEventListener('visibilitychange', () => {
    clearTimeout(hiddenTimer);
    if (doc.hidden) hiddenTimer = setTimeout(disconnect, HIDDEN_CLOSE_MS);
    else connect();
  });
  win.addEventListener('pagehide', disconnect);
  win.addEventListener('pageshow', e => e.persisted && (restore(), connect()));
})(window, document);
