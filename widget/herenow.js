/*
 * herenow.js — the herenow browser tracker (docs/WIDGET.md, docs/PROTOCOL.md).
 *
 *   <script src="https://collector.example/h.js" data-widget="KEY" async></script>
 *
 * This is the readable source. The collector serves widget/herenow.min.js,
 * made from this file by widget/build.sh (terser), after replacing the tokens
 * @HN_B@ and @HN_C@ below with its beacon and chat script paths.
 *
 * One session id per tab in sessionStorage (a new one after 30 minutes
 * without a beacon), a page view on load and on every SPA navigation, a
 * heartbeat every 30 s while the tab is visible, hide/show on visibility
 * changes, end when the page is left, each with the engaged (visible) time
 * since the previous beacon; custom events, identify, outbound clicks, form
 * submits and a chat hook. No cookies, no localStorage, no fingerprinting.
 */
((win, doc) => {
  const script = doc.currentScript;
  const stub = win.herenow;
  // Loaded twice (two tags, or a tag manager and a tag): the first one wins.
  if (!script || (stub && stub.loaded)) return;

  const KEY = script.getAttribute('data-widget');
  const ORIGIN = new URL(script.src).origin;
  const BEACON_URL = ORIGIN + '@HN_B@';   // e.g. /b     (replaced by the collector)
  // data-auto-events="off": no automatic outbound-click and form-submit events
  const AUTO = !/^(off|false|0)$/.test(script.getAttribute('data-auto-events'));
  const IGNORE = '[data-herenow-ignore]';   // on an element: no automatic events from it
  const CHAT = 'data-herenow-chat';         // on an element: a click on it is chat_opened
  const STORE_KEY = 'herenow';
  const SESSION_IDLE_MS = 30 * 60 * 1000;
  const HEARTBEAT_MS = 30 * 1000;
  // Byte limits of the protocol's string keys (PROTOCOL.md §2.2): a longer value
  // is cut, since the collector would reject the whole beacon. Values in d are
  // cut at 256 bytes, keys of d at 64.
  const LIMITS = { u: 2048, r: 2048, ti: 512, n: 64, l: 35, nm: 255, em: 255, ph: 50 };

  const nav = navigator;
  const loc = location;
  const utf8 = new TextEncoder();
  let lastUrl;          // URL of the last page view of this document
  let ended;            // `end` sent: quiet until the page is shown again
  let visibleSince = 0; // when the tab became visible or the last beacon went (0: hidden)
  let memory;           // the session, for when sessionStorage cannot be used
  let lastPv;           // this document sent its first page view

  // ---- msgpack (the few types a beacon uses) --------------------------------

  const pack = beacon => {
    const out = [];

    // the n low bytes of the integer x (|x| < 2^53), big-endian two's complement
    const bigEndian = (x, n) => {
      while (n--) out.push(Math.floor(x / 2 ** (8 * n)) & 255);
    };

    const str = (s, max) => {
      let bytes = utf8.encode(s);
      // cut at max bytes, then back to the start of a UTF-8 sequence
      if (bytes.length > max) {
        while ((bytes[max] & 0xc0) == 0x80) max--;
        bytes = bytes.subarray(0, max);
      }
      const n = bytes.length;
      if (n < 32) out.push(0xa0 | n);
      else if (n < 256) out.push(0xd9, n);
      else out.push(0xda), bigEndian(n, 2);
      out.push(...bytes);
    };

    // top: the beacon itself (its keys have their own limits; d is a map)
    const map = (m, top) => {
      const keys = Object.keys(m);
      const n = keys.length;
      if (n < 16) out.push(0x80 | n);
      else out.push(0xde), bigEndian(n, 2);
      keys.forEach(k => {
        const v = m[k];
        str(k, 64);
        if (typeof v == 'boolean') {
          out.push(v ? 0xc3 : 0xc2);
        } else if (typeof v == 'number') {
          if (v % 1 || v < -32 || v >= 2 ** 53) {
            // float 64 (also an integer below -32)
            const f = new DataView(new ArrayBuffer(9));
            f.setUint8(0, 0xcb);
            f.setFloat64(1, v);
            out.push(...new Uint8Array(f.buffer));
          } else if (v >= -32 && v < 128) {
            out.push(v & 255);                                  // fixint
          } else {
            // uint 8/16/32/64 (0xcc-0xcf); a negative below -32 went as a float
            let bytes = 1, type = 0xcc;
            while (v >= 2 ** (8 * bytes)) bytes *= 2, type++;
            out.push(type);
            bigEndian(v, bytes);
          }
        } else if (top && typeof v == 'object') {
          map(v);                                               // d
        } else {
          str(String(v), (top && LIMITS[k]) || 256);
        }
      });
    };

    map(beacon, 1);
    return new Uint8Array(out);
  };

  // The entries worth sending: no null, undefined or empty string, no NaN or
  // Infinity, at most 32 (the limit of d). None: null.
  const clean = m => {
    // (includes() finds NaN, and undefined at the hole)
    const keys = Object.keys(m)
      .filter(k => k && ![, null, '', NaN, 1 / 0, -1 / 0].includes(m[k]))
      .slice(0, 32);
    const c = {};
    keys.forEach(k => (c[k] = m[k]));
    return keys[0] ? c : null;
  };

  // ---- transport: sendBeacon, else fetch keepalive ------------------------------

  // The first page view of a document goes by fetch (cors mode), which can
  // read the answer: 200 for a chat-enabled widget (204 otherwise), and then
  // the chat script at @HN_C@ (replaced by the collector) is loaded
  // (docs/CHAT.md). Should that fetch fail, the beacon goes the usual way.
  // (Every browser that runs this script has fetch: the pixel is for
  // pages without JavaScript — docs/WIDGET.md §7.)
  const transmit = (b, first) => {
    const body = pack(b);
    try {
      if (!first && nav.sendBeacon(BEACON_URL, body)) return;
    } catch (e) { /* no sendBeacon */ }
    fetch(BEACON_URL, { method: 'POST', body, keepalive: true, mode: first ? 'cors' : 'no-cors', credentials: 'omit' })
      .then(r => {
        if (r.status == 200) {
          const s = doc.createElement('script');
          s.src = ORIGIN + '@HN_C@';
          doc.head.append(s);
        }
      }, () => first && transmit(b));
  };

  // ---- session ------------------------------------------------------------------

  // The session lives in sessionStorage as "id seq lastBeaconMs": [id, q, time].
  const load = () => {
    let v = memory;
    try { v = sessionStorage.getItem(STORE_KEY); } catch (e) { /* memory */ }
    return (v || '').split(' ');
  };

  const save = session => {
    memory = session.join(' ');
    try { sessionStorage.setItem(STORE_KEY, memory); } catch (e) { /* memory only */ }
  };

  const expired = (session, now) => !session[0] || now - session[2] > SESSION_IDLE_MS;

  // 28 characters of [0-9a-z]: four random 32-bit numbers in base 36, 7 digits each
  const randomId = () =>
    Array.from(crypto.getRandomValues(new Uint32Array(4)), x => (x + 2 ** 32).toString(36)).join('');

  // send(type, fields): one beacon of this session.
  const send = (type, fields) => {
    if (ended) return;
    const now = Date.now();
    let session = load();
    if (expired(session, now)) {
      // a new session starts with a page view, whatever woke it up
      if (type != 'pv') pageview(1);
      session = load();
      if (expired(session, now)) session = [randomId(), 0];
    }
    session[1] = +session[1] + 1;
    session[2] = now;
    save(session);
    // engaged: visible time since the previous beacon of this page (never
    // negative: the clock may step back, and a page view sent just above
    // took its time after `now`)
    const engaged = visibleSince && Math.max(now - visibleSince, 0);
    visibleSince = visibleSince && now;
    transmit(clean({
      v: 1, k: KEY, s: session[0], t: type, q: session[1],
      ...fields,
      e: engaged || null, ts: now, wd: nav.webdriver || null
    }), type == 'pv' && !lastPv);
    lastPv = type == 'pv' || lastPv;
  };

  // A page view of the current URL, unless it is the URL of the last page view
  // (force: send it anyway). The referrer: the document's for its first page
  // view, the previous URL for an SPA navigation, none for the same URL again
  // (herenow('pageview'), a session started anew on the same page).
  const pageview = force => {
    const url = loc.href;
    if (url != lastUrl || force) {
      const referrer = url == lastUrl ? '' : lastUrl || doc.referrer;
      lastUrl = url;
      send('pv', { u: url, ti: doc.title, r: referrer, sw: screen.width, sh: screen.height, l: nav.language });
    }
  };

  // ---- the JS API -------------------------------------------------------------------

  const event = (name, props) => {
    if (name) send('ev', { n: name, d: typeof props == 'object' && props ? clean(props) : null });
  };

  // herenow('event', name, props) · herenow('identify', {name, email, phone}) ·
  // herenow('pageview') · herenow('chat', 'open'|'close'|'send', text): kept
  // in herenow.cq until the chat script (herenow.c) is there
  const herenow = (command, a, b) => {
    if (command == 'event') event(a, b);
    if (command == 'identify') send('id', { nm: (a = Object(a)).name, em: a.email, ph: a.phone });
    if (command == 'pageview') pageview(1);
    if (command == 'chat') herenow.c ? herenow.c(a, b) : herenow.q.push([a, b]);
  };
  herenow.loaded = 1;
  // for the chat script (which sets herenow.c): the chat calls made before
  // it came, the widget key, the session, and a beacon of it
  herenow.q = [];
  herenow.x = [KEY, load, send];

  // ---- automatic events and the chat hook -------------------------------------------

  const onClick = ev => {
    const el = ev.target;
    if (!el.closest) return;
    const chat = el.closest('[' + CHAT + ']');
    if (chat && ev.type == 'click') event('chat_opened', { source: chat.getAttribute(CHAT) });
    const a = el.closest('a[href]');
    if (AUTO && a && !el.closest(IGNORE) && /^https?:$/.test(a.protocol) && a.host != loc.host) {
      event('outbound_click', { url: a.href });
    }
  };

  const onSubmit = ev => {
    const form = ev.target;
    if (AUTO && form.closest && !form.closest(IGNORE)) {
      // getAttribute: form.id and form.action may be inputs of that name
      event('form_submit', {
        form: form.getAttribute('id') || form.getAttribute('name'),
        action: new URL(form.getAttribute('action') || '', loc.href).pathname
      });
    }
  };

  // ---- wiring ---------------------------------------------------------------------

  const on = (target, type, fn, capture) => target.addEventListener(type, fn, capture);

  const start = () => {
    // An async script can run before the page's own scripts have set its
    // title: the first page view waits until the document is parsed.
    if (doc.readyState == 'loading') return on(doc, 'DOMContentLoaded', start);
    if (!doc.hidden) visibleSince = Date.now();
    pageview();
    if (doc.hidden) send('hide');

    // calls made before the script loaded, queued by the stub
    win.herenow = herenow;
    ((stub && stub.q) || []).forEach(args => herenow(...args));

    // SPA navigation: history.pushState/replaceState, back/forward, #hash
    ['pushState', 'replaceState'].forEach(name => {
      const original = history[name];
      history[name] = function () {
        const r = original.apply(this, arguments);
        setTimeout(pageview); // after the app had a chance to set the title
        return r;
      };
    });
    // (a #hash navigation fires popstate too)
    on(win, 'popstate', () => setTimeout(pageview));

    setInterval(() => doc.hidden || send('hb'), HEARTBEAT_MS);

    on(doc, 'visibilitychange', () => {
      if (doc.hidden) {
        send('hide');
        visibleSince = 0;
      } else {
        visibleSince = Date.now();
        send('show');
      }
    });
    on(win, 'pagehide', () => {
      send('end');
      ended = 1;
    });
    // back from the back/forward cache: on the site again
    on(win, 'pageshow', ev => {
      if (ev.persisted) {
        ended = lastUrl = 0;
        visibleSince = Date.now();
        pageview();
      }
    });

    on(doc, 'click', onClick, true);
    on(doc, 'auxclick', onClick, true);
    on(doc, 'submit', onSubmit, true);
    ['chat_opened', 'chat_message_sent'].forEach(name => on(doc, 'herenow:' + name, ev => event(name, ev.detail)));
  };

  // A prerendered page (speculation rules) counts once the visitor sees it.
  if (doc.prerendering) on(doc, 'prerenderingchange', start);
  else start();
})(window, document);
