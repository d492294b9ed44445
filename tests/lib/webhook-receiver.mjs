// webhook-receiver.mjs: a webhook receiver on loopback for the integration
// tests (tests/integration/test_webhooks.sh), node's plain http module.
//
//   node webhook-receiver.mjs PORTFILE LOGFILE SECRETSFILE [CERT KEY]
//
// With CERT and KEY (PEM files) it answers HTTPS.
// Listens on 127.0.0.1 (a free port, written to PORTFILE once listening).
// Each request is one JSON line in LOGFILE: {path, delivery, event, ts,
// sig_ok, ts_ok, ua, type, at_ms, body}. sig_ok: Herenow-Signature is
// v1=hex HMAC-SHA256(secret, timestamp + "." + body) for one of the
// secrets in SECRETSFILE (one a line, read at each request); ts_ok: the
// timestamp is within 5 minutes of now (docs/RULES.md §4). The answer
// depends on the path: /ok → 200, /fail → 500, /redirect → 302, /hang →
// never (the connection stays open), /slow-ok → 200 after 300 ms.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';

const [portFile, logFile, secretsFile, certFile, keyFile] = process.argv.slice(2);
const secrets = () => {
    try { return readFileSync(secretsFile, 'utf8').split('\n').filter(Boolean); } catch { return []; }
};
const hung = [];

const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const ts = req.headers['herenow-timestamp'] || '';
        const sig = req.headers['herenow-signature'] || '';
        const sigOk = secrets().some((s) => {
            const want = Buffer.from('v1=' + createHmac('sha256', s).update(ts + '.' + body).digest('hex'));
            const got = Buffer.from(sig);
            return want.length === got.length && timingSafeEqual(want, got);
        });
        const tsOk = /^[0-9]+$/.test(ts) && Math.abs(Date.now() / 1000 - Number(ts)) <= 300;
        const path = req.url.split('?')[0];
        appendFileSync(logFile, JSON.stringify({
            path, delivery: req.headers['herenow-delivery'] || '', event: req.headers['herenow-event'] || '',
            ts, sig_ok: sigOk, ts_ok: tsOk, ua: req.headers['user-agent'] || '',
            type: req.headers['content-type'] || '', at_ms: Date.now(), body,
        }) + '\n');
        if (path === '/hang') { hung.push(res); return; }
        if (path === '/fail') { res.writeHead(500).end('no'); return; }
        if (path === '/redirect') { res.writeHead(302, { Location: '/ok' }).end(); return; }
        if (path === '/slow-ok') { setTimeout(() => res.writeHead(200).end('ok'), 300); return; }
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    });
};
const server = certFile
    ? createTlsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, handler)
    : createServer(handler);
server.listen(0, '127.0.0.1', () => writeFileSync(portFile, String(server.address().port)));
process.on('SIGTERM', () => process.exit(0));
