// openapi.mjs: docs/openapi.yaml against the daemons (test tooling; beside the browser tests for
// their node_modules). Prints TAP-like "ok - …" / "not ok - …" lines that tests/lib.sh counts.
//
//   node openapi.mjs lint  SPEC ROUTES  the document validates (swagger-parser, OpenAPI 3.1), every
//                                       response schema compiles (ajv, strict), and the routes
//                                       listed in ROUTES ("METHOD /path/:param", one a line: the
//                                       api's router table and the collector's routes) are exactly
//                                       the operations of the document
//   node openapi.mjs check SPEC DIR     every answer recorded by hn_oa_curl in DIR/answers.tsv
//                                       ("id \t status \t content type \t method \t url"; the
//                                       body in DIR/id) has an operation (path and method), its
//                                       status is described, its content type is one of that
//                                       response's, a JSON body validates against the schema, and
//                                       a 2xx answer's query parameters are all described. One "ok"
//                                       per operation and status seen; one "not ok" per answer that
//                                       does not fit.
//
// Probes are allowed: the answer to a path no operation has, or to a described path with another
// method, is checked against the document's x-unknown-route / x-method-not-allowed responses
// (by status: 404, 405, 401 before either under /api/) instead.
import fs from 'node:fs';
import path from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const [mode, specPath, arg] = process.argv.slice(2);

function newAjv() {
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
    addFormats(ajv);
    return ajv;
}

// [{method, tpl, re, op, params}] for every operation of the (dereferenced) document.
function operations(api) {
    const ops = [];
    for (const [tpl, item] of Object.entries(api.paths || {})) {
        const segs = tpl.split('/').map((s) => (/^\{[^}]+\}$/.test(s) ? '[^/]+' : s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')));
        const re = new RegExp('^' + segs.join('/') + '$');
        for (const m of METHODS) {
            if (!item[m]) continue;
            const params = [...(item.parameters || []), ...(item[m].parameters || [])];
            ops.push({ method: m.toUpperCase(), tpl, re, op: item[m], params, nvars: (tpl.match(/\{/g) || []).length });
        }
    }
    // a literal segment wins over a parameter (fewer parameters first)
    return ops.sort((a, b) => a.nvars - b.nvars);
}

const isJson = (media) => media === 'application/json' || media.endsWith('+json');

function ajvText(errors) {
    return (errors || []).slice(0, 3).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && e.params.additionalProperty ? ` '${e.params.additionalProperty}'` : ''}`).join('; ');
}

async function lint() {
    let api;
    try {
        api = await SwaggerParser.validate(specPath);
        console.log(`ok - ${path.basename(specPath)} is a valid OpenAPI ${api.openapi} document (swagger-parser)`);
    } catch (e) {
        console.log(`not ok - ${path.basename(specPath)} does not validate: ${String(e.message).split('\n').slice(0, 6).join(' | ')}`);
        return;
    }
    const ajv = newAjv();
    const ops = operations(api);
    let schemas = 0, bad = [];
    for (const o of ops) {
        for (const [st, r] of Object.entries(o.op.responses || {})) {
            for (const [media, mt] of Object.entries(r.content || {})) {
                if (!mt.schema) { bad.push(`${o.method} ${o.tpl} ${st} ${media}: no schema`); continue; }
                try { ajv.compile(mt.schema); schemas++; } catch (e) { bad.push(`${o.method} ${o.tpl} ${st} ${media}: ${e.message}`); }
                for (const [ev, sc] of Object.entries(mt['x-events'] || {})) {
                    try { ajv.compile(sc); schemas++; } catch (e) { bad.push(`${o.method} ${o.tpl} ${st} event ${ev}: ${e.message}`); }
                }
            }
            if (!/^[1-5]\d\d$/.test(st)) bad.push(`${o.method} ${o.tpl}: response '${st}' is not a status (no default: every status is described)`);
        }
    }
    if (bad.length) console.log(`not ok - every response schema compiles with ajv (strict): ${bad.slice(0, 5).join(' | ')}`);
    else console.log(`ok - every response schema compiles with ajv (strict), ${schemas} schemas`);

    const norm = (s) => s.replace(/\{[^}]+\}|:[A-Za-z_]+/g, '{}');
    const have = new Set(ops.map((o) => `${o.method} ${norm(o.tpl)}`));
    const want = fs.readFileSync(arg, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    const wantSet = new Set(want.map((l) => { const [m, p] = l.split(/\s+/); return `${m} ${norm(p)}`; }));
    const missing = want.filter((l) => { const [m, p] = l.split(/\s+/); return !have.has(`${m} ${norm(p)}`); });
    // x-pending: BRANCH marks an operation described ahead of that branch's merge: it may be
    // missing from the daemons, and once it is there the marker must go.
    const isWanted = (o) => wantSet.has(`${o.method} ${norm(o.tpl)}`);
    const pending = ops.filter((o) => o.op['x-pending']);
    const merged = pending.filter(isWanted).map((o) => `${o.method} ${o.tpl} (${o.op['x-pending']})`);
    if (merged.length) console.log(`not ok - x-pending operations that the daemons now have (drop the marker): ${merged.join(', ')}`);
    else if (pending.length) console.log(`ok - ${pending.length} operations described ahead of their branch (x-pending: ${[...new Set(pending.map((o) => o.op['x-pending']))].join(', ')}) are not in the daemons yet`);
    const extra = ops.filter((o) => !isWanted(o) && !o.op['x-pending']).map((o) => `${o.method} ${o.tpl}`);
    if (missing.length) console.log(`not ok - every route of the daemons is described (${want.length} routes); not in the document: ${missing.join(', ')}`);
    else console.log(`ok - every route of the daemons is described (${want.length} routes)`);
    if (extra.length) console.log(`not ok - the document describes only routes the daemons have; unknown: ${extra.join(', ')}`);
    else console.log(`ok - the document describes only routes the daemons have (${ops.length} operations)`);
    for (const o of ops) {
        const declared = new Set(o.params.filter((p) => p.in === 'path').map((p) => p.name));
        const inTpl = [...o.tpl.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        const und = inTpl.filter((n) => !declared.has(n));
        if (und.length) console.log(`not ok - ${o.method} ${o.tpl}: path parameters not declared: ${und.join(', ')}`);
    }
}

// The complete events of an event stream (text/event-stream): each `data:` (joined by
// newlines) checked against x-events[its `event:` name, "message" without one]; comments,
// retry: and id: lines carry no data. An unfinished last event (no blank line yet) is skipped.
function checkEvents(text, events, validator, fail, group) {
    const blocks = text.replace(/\r\n?/g, '\n').split('\n\n');
    blocks.pop();
    for (const block of blocks) {
        let name = 'message';
        const data = [];
        for (const line of block.split('\n')) {
            if (line === '' || line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const f = i < 0 ? line : line.slice(0, i);
            const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            if (f === 'event') name = v;
            else if (f === 'data') data.push(v);
        }
        if (!data.length) continue;
        const failEv = group(name);
        const schema = events[name];
        if (!schema) { failEv(`not an event the description has (${Object.keys(events).join(', ')})`); continue; }
        let doc;
        try { doc = JSON.parse(data.join('\n')); } catch (e) { failEv(`data not JSON: ${e.message}`); continue; }
        let v;
        try { v = validator(schema); } catch (e) { failEv(`the schema does not compile: ${e.message}`); continue; }
        if (!v(doc)) failEv(`${ajvText(v.errors)} (data: ${data.join('\n').slice(0, 160)})`);
    }
}

async function check() {
    const api = await SwaggerParser.dereference(specPath);
    const ajv = newAjv();
    const ops = operations(api);
    const compiled = new Map();
    const validator = (schema) => {
        if (!compiled.has(schema)) compiled.set(schema, ajv.compile(schema));
        return compiled.get(schema);
    };
    const groups = new Map(); // "METHOD tpl status" -> {n, failed}
    const fails = [];
    const tsv = fs.readFileSync(path.join(arg, 'answers.tsv'), 'utf8').split('\n').filter(Boolean);
    for (const line of tsv) {
        const [id, status, ctype, method0, url] = line.split('\t');
        const method = method0.toUpperCase();
        const u = new URL(url);
        const p = u.pathname;
        const body = fs.readFileSync(path.join(arg, id));
        const pathOps = ops.filter((o) => o.re.test(p));
        // HEAD is answered as GET where a daemon takes it (else 405)
        let o = pathOps.find((x) => x.method === method) ||
            (method === 'HEAD' && status !== '405' ? pathOps.find((x) => x.method === 'GET') : undefined);
        let response, key;
        if (o) {
            key = `${method} ${o.tpl} ${status}`;
            response = o.op.responses[status];
        } else if (pathOps.length && (api['x-method-not-allowed'] || {})[status]) {
            key = `${method} (a described path, another method) ${status}`;
            response = api['x-method-not-allowed'][status];
        } else if (!pathOps.length && (api['x-unknown-route'] || {})[status]) {
            key = `${method} (no such route) ${status}`;
            response = api['x-unknown-route'][status];
        } else {
            key = `${method} ${p} ${status}`;
        }
        const g = groups.get(key) || { n: 0, failed: false };
        groups.set(key, g);
        g.n++;
        const fail = (why) => { g.failed = true; fails.push(`${method} ${p}${u.search} → ${status}: ${why}`); };
        if (!o && !response) { fail(pathOps.length ? `no ${method} operation on this path` : 'no operation has this path'); continue; }
        if (!response) { fail(`status ${status} is not described for ${method} ${o.tpl}`); continue; }
        if (o && /^2/.test(status)) {
            const qp = o.params.filter((x) => x.in === 'query');
            const q = new Set(qp.map((x) => x.name));
            // a free-form object (style form, explode) takes any names: the pixel's beacon keys
            const free = qp.some((x) => x.schema && x.schema.type === 'object' && (x.style || 'form') === 'form' && x.explode !== false);
            const und = free ? [] : [...new Set(u.searchParams.keys())].filter((k) => !q.has(k));
            if (und.length) fail(`query parameter(s) not described: ${und.join(', ')}`);
        }
        const content = response.content || {};
        const media = (ctype || '').split(';')[0].trim().toLowerCase();
        if (!Object.keys(content).length) {
            if (body.length && method !== 'HEAD') fail(`a body (${ctype || 'no content type'}) where the description has none`);
            continue;
        }
        const mt = content[media];
        if (!mt) { fail(`content type '${ctype}' is not one of ${Object.keys(content).join(', ')}`); continue; }
        if (method !== 'HEAD' && media === 'text/event-stream' && mt['x-events']) {
            checkEvents(body.toString('utf8'), mt['x-events'], validator, fail, (name) => {
                const e = `${key} event ${name}`;
                const eg = groups.get(e) || { n: 0, failed: false };
                groups.set(e, eg);
                eg.n++;
                // a stream has thousands of events: three failures told per event name, then a count
                return (why) => {
                    eg.failed = true;
                    eg.nfail = (eg.nfail || 0) + 1;
                    if (eg.nfail <= 3) fails.push(`${method} ${p}${u.search} event '${name}': ${why}`);
                };
            });
            continue;
        }
        if (method === 'HEAD' || !isJson(media)) continue;
        let doc;
        try { doc = JSON.parse(body.toString('utf8')); } catch (e) { fail(`not JSON: ${e.message}`); continue; }
        let v;
        try { v = validator(mt.schema); } catch (e) { fail(`the schema does not compile: ${e.message}`); continue; }
        if (!v(doc)) fail(`${ajvText(v.errors)} (body: ${body.toString('utf8').slice(0, 160)})`);
    }
    for (const [key, g] of [...groups].sort()) {
        if (!g.failed) console.log(`ok - openapi: ${key} (${g.n} answer${g.n > 1 ? 's' : ''} fit the description)`);
    }
    for (const f of fails) console.log(`not ok - openapi: ${f}`);
    for (const [key, g] of [...groups].sort()) {
        if (g.nfail > 3) console.log(`not ok - openapi: ${key}: ${g.nfail - 3} more events that do not fit`);
    }
}

if (mode === 'lint') await lint();
else if (mode === 'check') await check();
else { console.error('usage: openapi.mjs lint SPEC ROUTES | check SPEC DIR'); process.exit(2); }
