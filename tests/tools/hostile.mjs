// hostile.mjs: the client side of tests/integration/test_hostile.sh — byte
// shapes and connection behaviours no well-behaved client produces. Node's
// built-in modules only; every command talks to 127.0.0.1 only and every
// wait has a deadline.
//
//   gen DIR               every beacon shape of the table as DIR/<shape>.bin
//                         (HN_KEY: the widget key the valid-looking ones carry)
//   table SHAPES_DIR      runs the rows on stdin ("KIND TARGET STATUS COUNTERS",
//                         see the test) against the daemons named by HN_UDP,
//                         HN_HTTP, HN_ADMIN, HN_APIPORT, HN_PIDC, HN_PIDA; per
//                         row "ok - ..."/"not ok - ..." for its answer and
//                         counters, then for both daemons' liveness and RSS
//                         (< HN_MAXC / HN_MAXA MB)
//   slow PORT PATH INTERVAL_MS MAX_MS [line|body]
//                         a request dripped one byte per INTERVAL_MS; prints
//                         {"closed":true,"ms":1710,"sent":2,"status":null,...}
//   idle HOLD_MS          HN_IDLE's groups of connections that never send a
//                         byte, a probe while they are open, then waits for
//                         the servers to close them; prints JSON (idleMain)

import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const HOST = '127.0.0.1';

// ---- msgpack, just enough to build hostile shapes -------------------------------

// Raw bytes spliced in verbatim, and a str header over arbitrary bytes.
class Raw { constructor(b) { this.b = Buffer.from(b); } }
const raw = (b) => new Raw(b);
const strBytes = (b) => raw(Buffer.concat([strHdr(b.length), Buffer.from(b)]));

function strHdr(n) {
    if (n < 32) return Buffer.from([0xa0 | n]);
    if (n < 0x100) return Buffer.from([0xd9, n]);
    if (n < 0x10000) return Buffer.from([0xda, n >> 8, n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = 0xdb;
    b.writeUInt32BE(n, 1);
    return b;
}

function containerHdr(n, fix, c16, c32) {
    if (n < 16) return Buffer.from([fix | n]);
    if (n < 0x10000) return Buffer.from([c16, n >> 8, n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = c32;
    b.writeUInt32BE(n, 1);
    return b;
}

function enc(v, out) {
    if (v instanceof Raw) out.push(v.b);
    else if (v === null) out.push(Buffer.from([0xc0]));
    else if (v === true || v === false) out.push(Buffer.from([v ? 0xc3 : 0xc2]));
    else if (typeof v === 'number') {
        if (!Number.isInteger(v)) {
            const b = Buffer.alloc(9);
            b[0] = 0xcb;
            b.writeDoubleBE(v, 1);
            out.push(b);
        } else if (v >= 0 && v < 128) out.push(Buffer.from([v]));
        else if (v < 0 && v >= -32) out.push(Buffer.from([v & 0xff]));
        else if (v >= 0) {
            const b = Buffer.alloc(9);
            b[0] = 0xcf;
            b.writeBigUInt64BE(BigInt(v), 1);
            out.push(b);
        } else {
            const b = Buffer.alloc(9);
            b[0] = 0xd3;
            b.writeBigInt64BE(BigInt(v), 1);
            out.push(b);
        }
    } else if (typeof v === 'string') {
        const b = Buffer.from(v, 'utf8');
        out.push(strHdr(b.length), b);
    } else if (Array.isArray(v)) {
        out.push(containerHdr(v.length, 0x90, 0xdc, 0xdd));
        for (const x of v) enc(x, out);
    } else if (v instanceof Map) {          // keys of any type (nil, ints)
        out.push(containerHdr(v.size, 0x80, 0xde, 0xdf));
        for (const [k, x] of v) { enc(k, out); enc(x, out); }
    } else {
        const keys = Object.keys(v);
        out.push(containerHdr(keys.length, 0x80, 0xde, 0xdf));
        for (const k of keys) { enc(k, out); enc(v[k], out); }
    }
    return out;
}
const pack = (v) => Buffer.concat(enc(v, []));

// ---- the beacon shapes ------------------------------------------------------------

function shapes(key) {
    const base = (extra = {}) => ({ v: 1, k: key, s: 'hostile0001', t: 'pv', q: 1,
                                    u: 'https://example.com/', ...extra });
    const ev = (d) => ({ v: 1, k: key, s: 'hostile0001', t: 'ev', q: 2, n: 'click', d });
    const good = pack(base());
    const s = {};
    // the reference: a valid beacon (accepted)
    s.valid = good;
    // sizes
    s.empty = Buffer.alloc(0);
    s.byte_c1 = Buffer.from([0xc1]);                    // the one never-used byte
    s.byte_81 = Buffer.from([0x81]);                    // a map of one entry, no entry
    s.byte_01 = Buffer.from([0x01]);                    // a well-formed int
    // 65507 bytes (the largest UDP payload): a well-formed beacon whose u
    // fills it, and garbage
    s.max_valid = (() => {
        const probe = pack(base({ u: 'x'.repeat(65000) }));
        return pack(base({ u: 'x'.repeat(65000 + 65507 - probe.length) }));
    })();
    s.max_garbage = Buffer.alloc(65507, 0xc1);
    s.udp_over = pack(base({ ti: 'x'.repeat(8300) }));  // > 8 KiB datagram, < 64 KiB body
    s.body_over = pack(base({ u: 'x'.repeat(66000) })); // > 64 KiB body
    // fuzz-crasher shapes: truncation and trailing bytes
    s.trunc_half = good.subarray(0, good.length >> 1);
    s.trunc_last = good.subarray(0, good.length - 1);
    s.trailing = Buffer.concat([good, Buffer.from([0x00])]);
    s.two_objects = Buffer.concat([good, good]);
    // lengths beyond the buffer
    s.str8_beyond = pack(base({ u: raw([0xd9, 0xe0, 0x68, 0x74]) }));  // str8 of 224, 2 bytes there
    s.str16_beyond = pack(base({ u: raw([0xda, 0xff, 0xff, 0x61]) }));
    s.str32_beyond = pack(base({ u: raw([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]) }));
    s.bin32_beyond = pack(base({ u: raw([0xc6, 0x80, 0x00, 0x00, 0x00, 0x61]) }));
    s.ext32_beyond = pack(base({ u: raw([0xc9, 0xff, 0xff, 0xff, 0xf0, 0x01, 0x61]) }));
    s.array32_claim = Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]);   // 4 G elements in 5 bytes
    s.map32_claim = Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x76, 0x01]);
    s.map32_claim_d = pack(ev(raw([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01])));
    s.map16_claim = Buffer.concat([Buffer.from([0xde, 0xff, 0xff]), good.subarray(1)]);
    // wrong types
    s.v_str = pack(base({ v: '1' }));
    s.v_neg = pack(base({ v: -1 }));                     // negative fixint where a uint belongs
    s.q_neg = pack(base({ q: -32 }));
    s.sw_neg = pack(base({ sw: -1 }));
    s.k_int = pack(base({ k: 7 }));
    s.s_bin = pack(base({ s: raw([0xc4, 0x0b, ...Buffer.from('hostile0001')]) }));
    s.u_nil = pack(base({ u: null }));
    s.d_array = pack(ev([1, 2, 3]));
    s.d_nested = pack(ev({ a: { b: 1 } }));
    s.top_ext = Buffer.from([0xd4, 0x01, 0x00]);         // fixext1 at the top
    s.u_fixext = pack(base({ u: raw([0xd5, 0x05, 0x61, 0x62]) }));
    s.d_ext = pack(ev({ a: raw([0xc7, 0x03, 0x7f, 0x61, 0x62, 0x63]) }));
    s.q_float = pack(base({ q: 1.5 }));
    s.v_big = pack(base({ v: raw([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) }));
    // nil and int keys: ignored at the top (unknown keys), refused in d
    s.nil_keys = pack(new Map([...Object.entries(base()), [null, 1], [-1, null], [0, 'x']]));
    s.d_nil_key = pack(ev(new Map([[null, 'x']])));
    s.top_array_empty = Buffer.from([0x90]);
    s.top_batch_33 = pack(Array.from({ length: 33 }, () => base()));
    s.top_str = pack('hello');
    s.top_nil = Buffer.from([0xc0]);
    // nesting: the d props, as deep as the size limits allow
    const nest = (n, open, leaf) => Buffer.concat([Buffer.alloc(n, open), leaf]);
    s.deep_arrays_udp = pack(ev(raw(nest(8000, 0x91, Buffer.from([0x01])))));
    s.deep_maps_udp = pack(ev(raw(Buffer.concat([Buffer.from('81a161'.repeat(2600), 'hex'), Buffer.from([0x01])]))));
    s.deep_arrays_http = pack(ev(raw(nest(60000, 0x91, Buffer.from([0x01])))));
    s.deep_100k = pack(ev(raw(nest(100000, 0x91, Buffer.from([0x01])))));   // over 64 KiB: 413
    s.deep_top_9 = nest(9, 0x91, good);                   // one past the depth limit (8)
    // huge maps: many entries that are really there
    const props = (n) => Object.fromEntries(Array.from({ length: n }, (_, i) => ['k' + i, i & 0x7f]));
    s.d_keys_1000 = pack(ev(props(1000)));                // fits a datagram
    s.d_keys_8000 = pack(ev(props(8000)));                // fits a body
    s.unknown_keys_1000 = pack(base(Object.fromEntries(
        Array.from({ length: 1000 }, (_, i) => ['x' + i, 1]))));   // ignored keys: accepted
    // invalid UTF-8 (strict: RFC 3629)
    const bad = (b) => pack(base({ u: strBytes(Buffer.concat([Buffer.from('https://e.com/'), Buffer.from(b)])) }));
    s.utf8_overlong = bad([0xc0, 0xaf]);
    s.utf8_overlong3 = bad([0xe0, 0x80, 0xaf]);
    s.utf8_surrogate = bad([0xed, 0xa0, 0x80]);
    s.utf8_truncated = bad([0xe2, 0x82]);
    s.utf8_above_max = bad([0xf4, 0x90, 0x80, 0x80]);
    s.utf8_f5 = bad([0xf5, 0x80, 0x80, 0x80]);
    s.utf8_lone_cont = bad([0x80]);
    s.utf8_in_d_key = pack(ev(new Map([[strBytes([0xff, 0xfe]), 'x']])));
    s.utf8_in_d_val = pack(ev({ a: strBytes([0x61, 0xc3]) }));
    s.nul_in_u = bad([0x00]);
    return s;
}

function genMain(dir) {
    const s = shapes(env('HN_KEY'));
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, b] of Object.entries(s)) fs.writeFileSync(path.join(dir, name + '.bin'), b);
    console.log(JSON.stringify(Object.fromEntries(Object.entries(s).map(([k, b]) => [k, b.length]))));
}

// ---- raw HTTP exchanges -------------------------------------------------------------

const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
const REQ = (method, p, headers, body = '') =>
    `${method} ${p} HTTP/1.1\r\nHost: ${HOST}\r\n${headers.map((h) => h + '\r\n').join('')}\r\n${body}`;

// The request of a hostile CASE as a list of buffers (written in order).
function httpCase(name, p, extra = []) {
    const h = ['User-Agent: ' + UA, ...extra];
    switch (name) {
    case 'headers_5000':       // 5000 small headers (~60 KB)
        return [REQ('POST', p, [...h, ...Array.from({ length: 5000 }, (_, i) => `X-H${i}: v`), 'Content-Length: 1'], 'x')];
    case 'headers_12k':        // 12 KB of headers: over our 8 KiB, under libevent's 16 KiB (collector)
        return [REQ('POST', p, [...h, ...Array.from({ length: 600 }, (_, i) => `X-H${i}: ${'v'.repeat(12)}`), 'Content-Length: 1'], 'x')];
    case 'header_1mb':         // one header of 1 MB
        return [REQ('POST', p, [...h, 'X-Big: ' + 'a'.repeat(1 << 20), 'Content-Length: 1'], 'x')];
    case 'header_1mb_noend':   // one header of 1 MB, never finished
        return [`POST ${p} HTTP/1.1\r\nX-Big: ` + 'a'.repeat(1 << 20)];
    case 'cl_100mb':           // announces 100 MB, sends 10 bytes
        return [REQ('POST', p, [...h, 'Content-Length: 100000000'], '0123456789')];
    case 'cl_negative':
        return [REQ('POST', p, [...h, 'Content-Length: -1'], 'x')];
    case 'cl_huge_number':
        return [REQ('POST', p, [...h, 'Content-Length: 99999999999999999999999999'], 'x')];
    case 'cl_two_values':      // a request smuggling shape
        return [REQ('POST', p, [...h, 'Content-Length: 1', 'Content-Length: 5'], 'xxxxx')];
    case 'cl_and_chunked':     // the other one
        return [REQ('POST', p, [...h, 'Content-Length: 4', 'Transfer-Encoding: chunked'], '0\r\n\r\n')];
    case 'chunked_200k': {     // chunks adding up beyond every body limit
        const chunk = Buffer.from(`1000\r\n${'a'.repeat(0x1000)}\r\n`);
        return [REQ('POST', p, [...h, 'Transfer-Encoding: chunked']),
                ...Array.from({ length: 50 }, () => chunk), '0\r\n\r\n'];
    }
    case 'chunked_size_overflow':   // a chunk size of 2^64-1
        return [REQ('POST', p, [...h, 'Transfer-Encoding: chunked'], 'ffffffffffffffff\r\nabc')];
    case 'chunked_size_garbage':
        return [REQ('POST', p, [...h, 'Transfer-Encoding: chunked'], 'zz\r\nabc\r\n0\r\n\r\n')];
    case 'request_line_64k':   // a request line of 64 KB
        return [`GET ${p}?${'a'.repeat(65536)} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`];
    case 'request_line_64k_noend':
        return [`GET ${p}?${'a'.repeat(65536)}`];
    case 'garbage_line':
        return ['\x00\x01\x02 \xff\xfe / HTTP/9.9\r\n\r\n'];
    case 'bad_version':
        return [`GET ${p} HTTP/7.3\r\nHost: ${HOST}\r\n\r\n`];
    case 'header_no_colon':
        return [`GET ${p} HTTP/1.1\r\nHost: ${HOST}\r\nthis is not a header\r\n\r\n`];
    case 'header_nul':
        return [`GET ${p} HTTP/1.1\r\nHost: ${HOST}\r\nX-A: a\x00b\r\n\r\n`];
    case 'folded_flood':       // obsolete line folding: 20000 continuation lines
        return [REQ('GET', p, [...h, 'X-Fold: a' + '\r\n b'.repeat(20000)])];
    case 'pipelined_1000':     // 1000 requests in one write
        return [Array.from({ length: 1000 }, () => REQ('GET', p, h)).join('')];
    case 'unknown_method':
        return [`FROBNICATE ${p} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`];
    default:
        throw new Error('unknown http case ' + name);
    }
}

// Writes the buffers in order (respecting back-pressure) and reads until:
// the answer's head is in and the server closes (or 300 ms pass), wantCount
// answers are in, the server closes, or the deadline. Never throws.
function exchange(port, bufs, { timeoutMs = 10000, wantCount = 0 } = {}) {
    return new Promise((resolve) => {
        const t0 = Date.now();
        const sock = net.connect({ host: HOST, port });
        let data = Buffer.alloc(0), done = false, err = null, closed = false, grace = null;
        const finish = () => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            clearTimeout(grace);
            const text = data.toString('latin1');
            const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
            const all = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((x) => +x[1]);
            const cut = text.indexOf('\r\n\r\n');
            sock.destroy();
            resolve({ status: m ? +m[1] : null, closed, ms: Date.now() - t0, err,
                      answers: all.length, codes: [...new Set(all)].sort().join(','),
                      head: cut >= 0 ? text.slice(0, cut) : text.slice(0, 200),
                      body: cut >= 0 ? text.slice(cut + 4) : '' });
        };
        const timer = setTimeout(finish, timeoutMs);
        sock.on('data', (d) => {
            data = Buffer.concat([data, d]);
            const text = data.toString('latin1');
            if (wantCount) {
                if ((text.match(/HTTP\/1\.[01] \d{3}/g) || []).length >= wantCount) finish();
            } else if (grace === null && /^HTTP\/1\.[01] \d{3}[^]*?\r\n\r\n/.test(text)) {
                grace = setTimeout(finish, 300);     // the body and the close
            }
        });
        sock.on('end', () => { closed = true; setImmediate(finish); });
        sock.on('close', () => { closed = true; finish(); });
        sock.on('error', (e) => { err = e.code || String(e); });
        sock.on('connect', async () => {
            for (const b of bufs) {
                if (done || sock.destroyed) break;
                const ok = sock.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
                if (!ok) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
            }
        });
    });
}

// A plain request with Connection: close; the whole answer.
function request(port, method, p, headers = [], body = null) {
    const hs = [...headers, 'Connection: close'];
    let bufs;
    if (body === null) bufs = [REQ(method, p, hs)];
    else bufs = [REQ(method, p, [...hs, `Content-Length: ${body.length}`]), body];
    return exchange(port, bufs, { timeoutMs: 10000 });
}

// ---- the daemons: counters, liveness, memory -------------------------------------------

function env(name) {
    const v = process.env[name];
    if (v === undefined || v === '') throw new Error(name + ' is not set');
    return v;
}

function rssMB(pid) {
    try {
        const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Math.round(+m[1] / 1024) : -1;
    } catch { return -1; }
}

function alive(pid) {
    try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
        return state !== 'Z' && state !== 'X';
    } catch { return false; }
}

// The collector's counters that a beacon or a request can move.
const COUNTED = /^herenow_(beacons_(received|accepted|dropped)_total|http_responses_total|udp_datagrams_total|http_request_timeouts_total|http_incomplete_requests_total)[{ ]/;

async function counters(admin) {
    const r = await request(admin, 'GET', '/metrics');
    if (r.status !== 200) throw new Error(`collector /metrics: ${r.status} ${r.err}`);
    const m = new Map();
    for (const line of r.body.split('\n')) {
        if (!COUNTED.test(line)) continue;
        const i = line.lastIndexOf(' ');
        m.set(line.slice(0, i), +line.slice(i + 1));
    }
    return m;
}

function delta(a, b) {
    const out = [];
    for (const [k, v] of b) if (v !== (a.get(k) || 0)) out.push(`${k}+${v - (a.get(k) || 0)}`);
    return out.sort().join(' ');
}

// "drop:udp:malformed" / "drop:http:too_large:413" / "acc:pixel:200": the
// series that must move (by one) and nothing else.
function expectedDelta(spec) {
    const [what, tr, a, b] = spec.split(':');
    const out = [`herenow_beacons_received_total{transport="${tr}"}+1`];
    const code = what === 'drop' ? b : a;
    if (what === 'drop') out.push(`herenow_beacons_dropped_total{transport="${tr}",reason="${a}"}+1`);
    else if (what === 'acc') out.push(`herenow_beacons_accepted_total{transport="${tr}"}+1`);
    else throw new Error('bad counter spec ' + spec);
    if (tr === 'udp') out.push('herenow_udp_datagrams_total+1');
    else out.push(`herenow_http_responses_total{code="${code}"}+1`);
    return out.sort().join(' ');
}

class Tap {
    constructor() { this.passed = 0; this.failed = 0; }
    ok(cond, desc) {
        if (cond) this.passed++; else this.failed++;
        console.log(`${cond ? 'ok' : 'not ok'} - ${desc}`);
        return cond;
    }
}

// (b) and (c): both daemons alive and answering, RSS within bounds.
async function health(tap, cfg, row) {
    const [lc, lb, la] = await Promise.all([
        request(cfg.admin, 'GET', '/livez'),
        request(cfg.http, 'GET', '/h.js'),          // the workers' own port
        request(cfg.api, 'GET', '/livez')]);
    const rc = rssMB(cfg.pidC), ra = rssMB(cfg.pidA);
    let why = '';
    if (!alive(cfg.pidC)) why += ' collector dead;';
    if (!alive(cfg.pidA)) why += ' api dead;';
    if (lc.status !== 200) why += ` collector /livez ${lc.status} ${lc.err || ''};`;
    if (lb.status !== 200) why += ` collector beacon port GET /h.js ${lb.status} ${lb.err || ''};`;
    if (la.status !== 200) why += ` api /livez ${la.status} ${la.err || ''};`;
    if (!(rc >= 0 && rc < cfg.maxC)) why += ` collector RSS ${rc} MB;`;
    if (!(ra >= 0 && ra < cfg.maxA)) why += ` api RSS ${ra} MB;`;
    tap.ok(why === '', why === ''
        ? `${row}: both up; RSS collector ${rc} MB < ${cfg.maxC}, api ${ra} MB < ${cfg.maxA}`
        : `${row}:${why} (RSS collector ${rc} MB, api ${ra} MB)`);
}

// ---- the table ------------------------------------------------------------------------------

// Expands {KEY}, {WID}, {rep:TEXT:N} (TEXT N times) and {b64:TEXT}
// (base64url) in a table cell.
function expand(s, cfg) {
    return s.replace(/\{rep:([^:}]*):(\d+)\}/g, (_, t, n) => t.repeat(+n))
        .replace(/\{b64:([^}]*)\}/g, (_, t) => Buffer.from(t).toString('base64url'))
        .replace(/\{KEY\}/g, cfg.key).replace(/\{WID\}/g, cfg.wid);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function sendUdp(port, buf) {
    const s = dgram.createSocket({ type: 'udp4', sendBufferSize: 1 << 17 });
    await new Promise((res, rej) => s.send(buf, port, HOST, (e) => (e ? rej(e) : res())));
    s.close();
}

// The error page libevent's evhttp answers with by itself (a request it
// could not parse or that crossed its limits), before any handler of ours.
const LIBEVENT_PAGE = /^<HTML><HEAD>\n?<TITLE>\d{3} /;

// One row: send, then (a). Returns a short description of the outcome.
async function runRow(tap, cfg, cols, shapesDir) {
    const [kind, target, wantStatus, wantCount] = cols;
    const before = await counters(cfg.admin);
    let r = null, label;
    const statusOk = (st) => wantStatus === '-' || wantStatus.split('|').some((w) =>
        (w === 'closed' ? st.status === null && st.closed
         : w === '4xx' ? st.status >= 400 && st.status < 500
         : w === 'ev4xx' ? st.status >= 400 && st.status < 500 && LIBEVENT_PAGE.test(st.body)
         : +w === st.status));
    if (kind === 'udp') {
        const buf = fs.readFileSync(path.join(shapesDir, target + '.bin'));
        label = `udp ${target} (${buf.length} bytes)`;
        await sendUdp(cfg.udp, buf);
        // wait until the datagram is counted as received, however it ends
        const key = 'herenow_beacons_received_total{transport="udp"}';
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline && ((await counters(cfg.admin)).get(key) || 0) <= (before.get(key) || 0))
            await sleep(10);
    } else if (kind === 'post') {
        const buf = fs.readFileSync(path.join(shapesDir, target + '.bin'));
        label = `http POST /b ${target} (${buf.length} bytes)`;
        r = await request(cfg.http, 'POST', '/b', ['User-Agent: ' + UA, 'Content-Type: text/plain'], buf);
    } else if (kind === 'pixel') {
        const q = expand(target, cfg);
        label = `pixel ?${q.length > 60 ? q.slice(0, 60) + `...(${q.length} bytes)` : q}`;
        r = await request(cfg.http, 'GET', '/p.gif?' + q, ['User-Agent: ' + UA]);
    } else if (kind === 'raw') {             // raw PORTNAME:CASE:PATH
        const [pn, cs, p] = target.split(':');
        label = `${pn} ${cs} ${p}`;
        r = await exchange(cfg[pn === 'collector' ? 'http' : 'api'], httpCase(cs, p),
                           { timeoutMs: 10000, wantCount: cs === 'pipelined_1000' ? 1000 : 0 });
    } else if (kind === 'api') {             // api METHOD:PATH (token sent)
        const i = target.indexOf(':');
        const method = target.slice(0, i), p = expand(target.slice(i + 1), cfg);
        label = `api ${method} ${p.length > 90 ? p.slice(0, 90) + `...(${p.length} bytes)` : p}`;
        r = await request(cfg.api, method, p, [`Authorization: Bearer ${cfg.tok}`]);
    } else {
        throw new Error('unknown row kind ' + kind);
    }
    const after = await counters(cfg.admin);
    const got = delta(before, after);
    let desc = label, ok = true;
    if (r) {
        const reason = (/^\{"error":\s*"([^"]*)"/.exec(r.body) || /^([^\n]{0,100})/.exec(r.body) || [])[1] || '';
        desc += ` → ${r.status === null ? (r.closed ? 'closed without an answer' : `no answer and not closed after ${r.ms} ms`) : r.status}` +
                (r.answers > 1 ? ` (${r.answers} answers: ${r.codes})` : '') +
                (reason ? ` "${reason.replace(/[^\x20-\x7e]/g, '?')}"` : '') + (r.err ? ` [${r.err}]` : '');
        if (!statusOk(r)) { ok = false; desc += `; want ${wantStatus}`; }
        // whatever else the connection carried (pipelined, smuggled): no 5xx
        if (r.codes.split(',').some((c) => c >= '500') && !wantStatus.includes('5')) {
            ok = false;
            desc += `; answers on this connection include ${r.codes}`;
        }
        if (kind === 'api' && r.status >= 400 && r.status < 500 && !/^\{"error":\s*"[^"]+"/.test(r.body) &&
            !(wantStatus.includes('ev4xx') && LIBEVENT_PAGE.test(r.body))) {
            ok = false;
            desc += '; want a JSON {"error": reason}';
        }
    }
    if (wantCount !== '*') {
        const exp = wantCount === '-' ? '' : expectedDelta(wantCount);
        if (got !== exp) { ok = false; desc += `; counters moved: [${got}], want [${exp}]`; }
        else if (exp) desc += `; counted ${wantCount}`;
    }
    tap.ok(ok, desc);
    return r;
}

// table: rows on stdin, "KIND TARGET STATUS COUNTERS" ('#' comments), see
// tests/integration/test_hostile.sh. Each row: (a), then health.
async function tableMain(shapesDir) {
    const cfg = {
        udp: +env('HN_UDP'), http: +env('HN_HTTP'), admin: +env('HN_ADMIN'), api: +env('HN_APIPORT'),
        pidC: +env('HN_PIDC'), pidA: +env('HN_PIDA'), maxC: +env('HN_MAXC'), maxA: +env('HN_MAXA'),
        key: env('HN_KEY'), tok: env('HN_TOK'), wid: env('HN_WID'),
    };
    const tap = new Tap();
    const rows = fs.readFileSync(0, 'utf8').split('\n').map((l) => l.replace(/\s+#.*$/, '').trim())
        .filter((l) => l && !l.startsWith('#'));
    for (const line of rows) {
        const cols = line.split(/\s+/);
        if (cols.length !== 4) throw new Error('bad table row: ' + line);
        try {
            await runRow(tap, cfg, cols, shapesDir);
        } catch (e) {
            tap.ok(false, `${line}: ${e.stack || e}`);
        }
        await health(tap, cfg, '  ' + cols.slice(0, 2).join(' ').slice(0, 70));
    }
    console.log(`# table: ${rows.length} rows, ${tap.passed} passed, ${tap.failed} failed`);
}

// ---- slow clients --------------------------------------------------------------------

// One byte every intervalMs. phase "line": the whole request dripped;
// "body": request line and headers at once (Content-Length: 100), the body
// dripped. Stops at the server's close or answer, or at maxMs.
function slowMain(port, p, intervalMs, maxMs, phase = 'line') {
    intervalMs = +intervalMs;
    maxMs = +maxMs;
    return new Promise((resolve) => {
        const head = `POST ${p} HTTP/1.1\r\nHost: ${HOST}\r\nUser-Agent: slowloris\r\nContent-Length: 100\r\n\r\n`;
        const body = 'x'.repeat(100);
        const all = phase === 'body' ? body : head + body;
        const t0 = Date.now();
        const sock = net.connect({ host: HOST, port: +port });
        let sent = 0, done = false, data = '', tick = null, err = null;
        const finish = (closed) => {
            if (done) return;
            done = true;
            clearInterval(tick);
            clearTimeout(stop);
            const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
            sock.destroy();
            console.log(JSON.stringify({ closed, ms: Date.now() - t0, sent, status: m ? +m[1] : null, err }));
            resolve();
        };
        const stop = setTimeout(() => finish(false), maxMs);
        sock.on('data', (d) => { data += d.toString('latin1'); });
        sock.on('end', () => finish(true));
        sock.on('close', () => finish(true));
        sock.on('error', (e) => { err = e.code || String(e); });
        sock.on('connect', () => {
            if (phase === 'body') sock.write(head);
            const drip = () => {
                if (done || sent >= all.length) return;
                sock.write(all[sent++]);
            };
            drip();
            tick = setInterval(drip, intervalMs);
        });
    });
}

// ---- idle connections ------------------------------------------------------------------

// A probe: one request on a fresh connection, its status and time. kind
// "beacon": a valid beacon POSTed to /b (HN_KEY); else a GET of that path
// (with auth as its Authorization header).
async function probe(port, kind, auth) {
    const r = kind === 'beacon'
        ? await request(port, 'POST', '/b', ['User-Agent: ' + UA], shapes(env('HN_KEY')).valid)
        : await request(port, 'GET', kind, auth ? [`Authorization: ${auth}`] : []);
    return { status: r.status, ms: r.ms, err: r.err };
}

// HN_IDLE: JSON list of {name, port, n, pid, probe: "beacon" | "/path", auth}.
// Opens each group's n connections in turn (HN_IDLE_CONC, default 500,
// connecting at once), then, while they are all open, reads each pid's RSS
// and sends each group's probe on a new connection; then waits up to
// HOLD_MS for the servers to close the idle connections. Reports per group:
// opened, failed, closed (by the server), open at the probe, the shortest
// and longest lifetime (client's connect event to the server's close),
// RSS while open and after, the probe's status and time.
async function idleMain(holdMs) {
    const groups = JSON.parse(env('HN_IDLE'));
    const t0 = Date.now();
    const res = {};
    const sockets = [];
    for (const g of groups) await new Promise((resolve) => {
        const st = { opened: 0, failed: 0, closed: 0, lastOpenMs: 0, firstCloseMs: null, lastCloseMs: null, errs: {} };
        res[g.name] = st;
        let next = 0, inflight = 0;
        const pump = () => {
            while (inflight < (+process.env.HN_IDLE_CONC || 500) && next < g.n) {
                next++;
                inflight++;
                const s = net.connect({ host: HOST, port: g.port });
                sockets.push(s);
                let opened = false;
                s.on('connect', () => {
                    opened = true;
                    s.hnOpened = Date.now();
                    st.opened++;
                    st.lastOpenMs = s.hnOpened - t0;
                    inflight--;
                    pump();
                });
                s.on('error', (e) => { st.errs[e.code] = (st.errs[e.code] || 0) + 1; });
                s.on('close', () => {
                    if (!opened) {
                        st.failed++;
                        inflight--;
                        pump();
                    } else if (!s.hnMine) {
                        st.closed++;
                        const life = Date.now() - s.hnOpened;
                        st.minLifeMs = Math.min(st.minLifeMs ?? life, life);
                        st.maxLifeMs = Math.max(st.maxLifeMs ?? life, life);
                        const t = Date.now() - t0;
                        if (st.firstCloseMs === null) st.firstCloseMs = t;
                        st.lastCloseMs = t;
                    }
                });
                s.on('data', () => {});
            }
            if (next >= g.n && inflight === 0) resolve();
        };
        pump();
    });
    const openedAt = Date.now() - t0;
    // while everything is open: memory and a probe per group
    for (const g of groups) {
        const st = res[g.name];
        st.openAllMs = openedAt;
        st.openAtProbe = st.opened - st.closed;
        st.rssMB = rssMB(g.pid);
    }
    const probes = await Promise.all(groups.map((g) => probe(g.port, g.probe, g.auth)));
    groups.forEach((g, i) => {
        res[g.name].probe = probes[i];
        res[g.name].openAfterProbe = res[g.name].opened - res[g.name].closed;
    });
    // then the servers must close them
    const deadline = Date.now() + +holdMs;
    while (Date.now() < deadline && groups.some((g) => res[g.name].closed < res[g.name].opened))
        await sleep(100);
    for (const g of groups) {
        const st = res[g.name];
        st.leftOpen = st.opened - st.closed;
        st.rssAfterMB = rssMB(g.pid);
    }
    for (const s of sockets) { s.hnMine = true; s.destroy(); }
    console.log(JSON.stringify(res));
}

// ---- main --------------------------------------------------------------------------------

const [cmd, ...args] = process.argv.slice(2);
const main = { gen: genMain, table: tableMain, slow: slowMain, idle: idleMain }[cmd];
if (!main) {
    console.error('usage: hostile.mjs gen DIR | table SHAPES_DIR < rows | slow PORT PATH INTERVAL_MS MAX_MS [line|body] | idle HOLD_MS');
    process.exit(2);
}
await main(...args);
