#!/usr/bin/env bash
# test_tls.sh: native HTTPS (common/tls.h, docs/OPERATIONS.md "HTTPS") — a test CA made
# here with openssl; the collector with HERENOW_HTTPS_LISTEN beside its plain port, the api
# with HERENOW_API_HTTPS_LISTEN.
#
#   1. A bad pair stops the start, exit 2, one line: expired, not yet valid, a key that is
#      not the certificate's, a missing file, a certificate without an HTTPS port.
#   2. On the wire: plain HTTP to an HTTPS port gets no HTTP answer; TLS 1.0 and 1.1 are
#      refused, 1.2 and 1.3 taken; ALPN http/1.1; a session resumed from its ticket; the
#      chain sent whole; HSTS on the api's HTTPS answers only; the certificate's expiry in
#      /metrics.
#   3. tests/browser/tls.mjs: the dashboard and its live stream, the widget, beacons, Start
#      chat and the chat downlink, all over HTTPS in headless Chromium (the CA trusted by
#      that browser only).
#   4. SIGHUP with a new certificate: new connections get it; a live stream and a chat
#      downlink opened before stay open and keep delivering; a reload of a broken pair
#      keeps the old certificate, says why and counts it.
#   5. The proxy recipe (scripts/nginx/herenow.conf) run by nginx in front of the plain
#      ports: the same browser test through it.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_browser_prereqs
hn_need openssl openssl
export HN_ARTIFACTS=${HN_ARTIFACTS:-$HN_ROOT/build/artifacts/tls}
mkdir -p "$HN_ARTIFACTS"
hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash "$BROWSER_DIR/deps.sh"

# ---- the test CA ----------------------------------------------------------------------------
C=$HN_TMP/certs
mkdir -p "$C"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec "$C/ca.key"
openssl req -x509 -new -key "$C/ca.key" -days 3 -subj "/CN=herenow test CA" -out "$C/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$C/leaf.ext"
# leaf NAME CN [openssl ca date options]: NAME.key, NAME.pem (the leaf, then the CA: a chain)
SERIAL=1
leaf() {
    local name=$1 cn=$2
    shift 2
    ec "$C/$name.key"
    openssl req -new -key "$C/$name.key" -subj "/CN=$cn" -out "$C/$name.csr" 2>/dev/null
    if [ $# -eq 0 ]; then
        SERIAL=$((SERIAL + 1))
        openssl x509 -req -in "$C/$name.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -set_serial "$SERIAL" \
            -days 2 -extfile "$C/leaf.ext" -out "$C/$name.crt" 2>/dev/null
    else   # dates of its own: openssl ca (x509 -req has only -days)
        mkdir -p "$C/db"
        : >"$C/db/index.txt"
        [ -f "$C/db/serial" ] || echo 1000 >"$C/db/serial"
        printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s/db/index.txt\nnew_certs_dir=%s/db\nserial=%s/db/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n' \
            "$C" "$C" "$C" >"$C/ca.cnf"
        openssl ca -batch -notext -config "$C/ca.cnf" -cert "$C/ca.pem" -keyfile "$C/ca.key" \
            -extfile "$C/leaf.ext" -in "$C/$name.csr" -out "$C/$name.crt" "$@" 2>/dev/null
    fi
    cat "$C/$name.crt" "$C/ca.pem" >"$C/$name.pem"
}
leaf one "herenow test one"
leaf two "herenow test two"
leaf expired "herenow test expired" -startdate 20250101000000Z -enddate 20250102000000Z
leaf future "herenow test future" -startdate 20990101000000Z -enddate 20990102000000Z
SPKI=$(openssl x509 -in "$C/ca.pem" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
# the daemons read these paths; SIGHUP swaps what they hold
cp "$C/one.pem" "$C/live.pem"
cp "$C/one.key" "$C/live.key"

hn_start_stores
read -r WID KEY <<<"$(hn_widget_add --name "TLS shop" --domain 127.0.0.1 --chat on)"
TOK=$("$HN_BIN/herenowctl" token create --all --name tls-test 2>/dev/null)

HTTP=$(hn_free_port); HTTPS=$(hn_free_port); UDP=$(hn_free_port); ADMIN=$(hn_free_port)
API=$(hn_free_port); APIS=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=2 HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100 HERENOW_API_WWW=$HN_ROOT/api/www
export HERENOW_PUBLIC_URL=https://127.0.0.1:$HTTPS

# ---- 1. a bad pair stops the start ---------------------------------------------------------
# refused NAME WANT ENV...: the collector started with ENV exits 2 with one line holding WANT
refused() {
    local what=$1 want=$2 rc=0 bin=$3
    shift 3
    env "$@" "$HN_BIN/$bin" >"$HN_TMP/refused.out" 2>&1 </dev/null || rc=$?
    hn_assert_eq "$what: exit 2" 2 "$rc"
    hn_assert_cmd "$what: says '$want'" grep -qF -- "$want" "$HN_TMP/refused.out"
    hn_assert_eq "$what: in one line (besides log lines)" 1 "$(grep -vc '^ts=' "$HN_TMP/refused.out")"
}
COL=(HERENOW_HTTPS_LISTEN=127.0.0.1:$HTTPS)
APIV=(HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_API_HTTPS_LISTEN=127.0.0.1:$APIS)
refused "collector, an expired certificate" "expired on 2025-01-02 00:00:00 UTC" herenow-collector "${COL[@]}" \
    HERENOW_TLS_CERT="$C/expired.pem" HERENOW_TLS_KEY="$C/expired.key"
refused "api, an expired certificate" "expired on 2025-01-02" herenow-api "${APIV[@]}" \
    HERENOW_TLS_CERT="$C/expired.pem" HERENOW_TLS_KEY="$C/expired.key"
refused "collector, a certificate not valid yet" "not valid before 2099-01-01" herenow-collector "${COL[@]}" \
    HERENOW_TLS_CERT="$C/future.pem" HERENOW_TLS_KEY="$C/future.key"
refused "collector, another certificate's key" "not the certificate's private key (key values mismatch)" \
    herenow-collector "${COL[@]}" HERENOW_TLS_CERT="$C/one.pem" HERENOW_TLS_KEY="$C/two.key"
refused "api, another certificate's key" "key values mismatch" herenow-api "${APIV[@]}" \
    HERENOW_TLS_CERT="$C/one.pem" HERENOW_TLS_KEY="$C/two.key"
refused "collector, a missing key file" "HERENOW_TLS_KEY $C/nothing.key: No such file or directory" \
    herenow-collector "${COL[@]}" HERENOW_TLS_CERT="$C/one.pem" HERENOW_TLS_KEY="$C/nothing.key"
refused "collector, a key where the certificate goes" "not a PEM certificate chain" \
    herenow-collector "${COL[@]}" HERENOW_TLS_CERT="$C/one.key" HERENOW_TLS_KEY="$C/one.key"
refused "collector, no HTTPS port for the certificate" "HERENOW_HTTPS_LISTEN is not" \
    herenow-collector HERENOW_TLS_CERT="$C/one.pem" HERENOW_TLS_KEY="$C/one.key"
refused "collector, an HTTPS port without a certificate" "HERENOW_TLS_CERT (empty): not set" \
    herenow-collector "${COL[@]}"
refused "collector, HTTPS on the plain port's port" "HERENOW_HTTPS_LISTEN: port $HTTP is HERENOW_HTTP_LISTEN's too" \
    herenow-collector HERENOW_HTTPS_LISTEN="0.0.0.0:$HTTP" HERENOW_TLS_CERT="$C/one.pem" HERENOW_TLS_KEY="$C/one.key"
refused "api, HTTPS on the plain port's port" "HERENOW_API_HTTPS_LISTEN: port $API is HERENOW_API_LISTEN's too" \
    herenow-api HERENOW_API_LISTEN="127.0.0.1:$API" HERENOW_API_HTTPS_LISTEN="127.0.0.1:$API" \
    HERENOW_TLS_CERT="$C/one.pem" HERENOW_TLS_KEY="$C/one.key"

# ---- the daemons --------------------------------------------------------------------------
export HERENOW_TLS_CERT=$C/live.pem HERENOW_TLS_KEY=$C/live.key
# short request deadlines (the idle timeouts stay at their defaults, 5 and 10 s): the drip below
export HERENOW_HTTP_REQUEST_TIMEOUT_MS=1500 HERENOW_API_REQUEST_TIMEOUT_MS=1500
HERENOW_HTTPS_LISTEN=127.0.0.1:$HTTPS hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
# (the api's ticket keys rotate every 3 s: section 2 watches them)
HERENOW_API_HTTPS_LISTEN=127.0.0.1:$APIS HERENOW_TLS_TICKET_ROTATE_S=3 hn_start_api
A=https://127.0.0.1:$APIS
B=https://127.0.0.1:$HTTPS
hn_wait_for 10 "api answers over HTTPS" curl -fsS --cacert "$C/ca.pem" "$A/livez"

# ---- 2. on the wire --------------------------------------------------------------------------
code() { curl -s -o /dev/null -w '%{http_code}' "$@" || true; }
hn_assert_eq "collector: GET /h.js over HTTPS, the test CA trusted: 200" 200 "$(code --cacert "$C/ca.pem" "$B/h.js")"
hn_assert_eq "collector: the same script on the plain port still: 200" 200 "$(code "http://127.0.0.1:$HTTP/h.js")"
hn_assert_eq "collector: HTTPS without trusting the CA fails verification (curl 60)" 60 \
    "$(curl -s -o /dev/null "$B/h.js"; echo $?)"
hn_assert_eq "collector: plain HTTP to the HTTPS port gets no HTTP answer" 000 "$(code --max-time 5 "http://127.0.0.1:$HTTPS/h.js")"
hn_assert_eq "api: plain HTTP to the HTTPS port gets no HTTP answer" 000 "$(code --max-time 5 "http://127.0.0.1:$APIS/livez")"
hn_assert_eq "api: HTTPS answers as the plain port does" "200 200" \
    "$(code --cacert "$C/ca.pem" "$A/readyz") $(code "$HN_API_URL/readyz")"
hdr() { curl -s -D - -o /dev/null "$@" | awk 'BEGIN { IGNORECASE = 1 } tolower($1) == "strict-transport-security:" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); print }'; }
hn_assert_eq "api: HSTS on its HTTPS answers (the dashboard)" "max-age=31536000" "$(hdr --cacert "$C/ca.pem" "$A/")"
hn_assert_eq "api: no HSTS on the plain port" "" "$(hdr "$HN_API_URL/")"
hn_assert_eq "api: HSTS on an API error answer too" "max-age=31536000" "$(hdr --cacert "$C/ca.pem" "$A/api/visitor-tracking/widgets")"

# sclient PORT ARGS...: openssl s_client's report of a handshake (an empty request, then EOF)
sclient() { local p=$1; shift; openssl s_client -connect "127.0.0.1:$p" -servername localhost -CAfile "$C/ca.pem" "$@" </dev/null 2>&1 || true; }
for port in "$HTTPS" "$APIS"; do
    who=collector; [ "$port" = "$HTTPS" ] || who=api
    hn_assert_cmd "$who: TLS 1.0 refused by the server (protocol version alert)" bash -c "openssl s_client -connect 127.0.0.1:$port -tls1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1 | grep -q 'alert protocol version'"
    hn_assert_cmd "$who: TLS 1.1 refused" bash -c "openssl s_client -connect 127.0.0.1:$port -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null 2>&1 | grep -q 'alert protocol version'"
    hn_assert_cmd "$who: TLS 1.2 taken, verified" bash -c "openssl s_client -connect 127.0.0.1:$port -tls1_2 -CAfile '$C/ca.pem' </dev/null 2>&1 | grep -q 'Verify return code: 0 (ok)'"
    out=$(sclient "$port" -tls1_3 -alpn h2,http/1.1)
    hn_assert_cmd "$who: TLS 1.3 taken" grep -q 'New, TLSv1.3' <<<"$out"
    hn_assert_cmd "$who: ALPN http/1.1 when h2 is offered too" grep -q 'ALPN protocol: http/1.1' <<<"$out"
    hn_assert_cmd "$who: the chain sent whole (the leaf, then the CA)" grep -q '1 s:CN = herenow test CA' <<<"$out"
    hn_assert_cmd "$who: a TLS 1.2 CBC cipher is refused (handshake failure)" bash -c "openssl s_client -connect 127.0.0.1:$port -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA </dev/null 2>&1 | grep -q 'alert handshake failure'"
    rm -f "$HN_TMP/sess"
    sclient "$port" -tls1_2 -sess_out "$HN_TMP/sess" >/dev/null
    hn_assert_cmd "$who: a TLS 1.2 session resumed from its ticket" grep -q 'Reused, TLSv1.2' <<<"$(sclient "$port" -tls1_2 -sess_in "$HN_TMP/sess")"
done
metric() { curl -fsS "$1" | awk -v m="$2" '$1 == m { print $2 }'; }

# session-ticket keys rotate (the api: every 3 s here): a ticket under the previous key still
# resumes; a new key appears each period. (A ticket's first 16 bytes name its key: the first
# line of openssl's dump.)
ticket_key() { openssl sess_id -in "$1" -noout -text 2>/dev/null | awk '/TLS session ticket:/ { t = 1; next } t { print; exit }'; }
sclient "$APIS" -tls1_2 -sess_out "$HN_TMP/t1" >/dev/null
k1=$(ticket_key "$HN_TMP/t1")
hn_assert_cmd "api: a session ticket was issued" test -n "$k1"
rotated() { sclient "$APIS" -tls1_2 -sess_out "$HN_TMP/t2" >/dev/null; k2=$(ticket_key "$HN_TMP/t2"); [ -n "$k2" ] && [ "$k2" != "$k1" ]; }
hn_wait_for 8 "api: a new ticket key after the rotation period" rotated
hn_assert_cmd "api: a ticket under the previous key still resumes" grep -q 'Reused, TLSv1.2' <<<"$(sclient "$APIS" -tls1_2 -sess_in "$HN_TMP/t1")"

# a client dripping its TLS handshake, a byte every 0.3 s (the idle timeout never fires): the
# request deadline (1.5 s here) closes it, as it closes a plain request dripped; counted
drip() {   # drip PORT: seconds until the server closed the connection, or "open" after 12 s
    perl -MIO::Socket::INET -MTime::HiRes=time,sleep -e '
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or die "connect: $!";
        $s->autoflush(1);
        my $t0 = time;
        syswrite($s, "\x16\x03\x01\x02\x00");          # a handshake record of 512 bytes: its header
        while (time - $t0 < 12) {
            sleep 0.3;
            my $rin = ""; vec($rin, fileno($s), 1) = 1;
            if (select(my $r = $rin, undef, undef, 0) && !sysread($s, my $b, 64)) { printf "%.1f\n", time - $t0; exit 0 }
            syswrite($s, "\x01") or do { printf "%.1f\n", time - $t0; exit 0 };
        }
        print "open\n";' "$1"
}
before=$(metric "http://127.0.0.1:$ADMIN/metrics" herenow_http_request_timeouts_total)
t=$(drip "$HTTPS")
hn_assert_cmd "collector: a dripped handshake is closed by the request deadline (closed after $t s)" \
    awk -v t="$t" 'BEGIN { exit !(t != "open" && t >= 1.4 && t < 4) }'
hn_assert_eq "collector: … counted as a request timeout" "$((before + 1))" "$(metric "http://127.0.0.1:$ADMIN/metrics" herenow_http_request_timeouts_total)"
# … while a connection whose handshake is done, silent for longer than that deadline (a
# browser's preconnect), is not cut: its request 3 s later is answered, nothing counted
before=$(metric "http://127.0.0.1:$ADMIN/metrics" herenow_http_request_timeouts_total)
got=$( (sleep 3; printf 'GET /h.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'; sleep 1) |
    openssl s_client -quiet -connect "127.0.0.1:$HTTPS" -CAfile "$C/ca.pem" 2>/dev/null | sed -n '1s/\r$//p' || true)
hn_assert_eq "collector: a silent TLS connection (handshake done) outlives the request deadline" "HTTP/1.1 200 OK" "$got"
hn_assert_eq "… not counted as a request timeout" "$before" "$(metric "http://127.0.0.1:$ADMIN/metrics" herenow_http_request_timeouts_total)"
t=$(drip "$APIS")
hn_assert_cmd "api: a dripped handshake is closed by the request deadline (closed after $t s)" \
    awk -v t="$t" 'BEGIN { exit !(t != "open" && t >= 1.4 && t < 4) }'
NOTAFTER=$(date -d "$(openssl x509 -in "$C/one.crt" -noout -enddate | cut -d= -f2)" +%s)
hn_assert_eq "collector: the certificate's expiry in /metrics" "$NOTAFTER" "$(metric "http://127.0.0.1:$ADMIN/metrics" herenow_tls_cert_not_after_seconds)"
hn_assert_eq "api: the certificate's expiry in /metrics" "$NOTAFTER" "$(metric "$HN_API_URL/metrics" herenow_tls_cert_not_after_seconds)"

# ---- 3. the browser ------------------------------------------------------------------------
echo "# tests/browser/tls.mjs (native HTTPS)"
NODE_EXTRA_CA_CERTS=$C/ca.pem HN_API=$A HN_COLLECTOR=$B HN_TOKEN=$TOK HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY \
    HN_SPKI=$SPKI HN_HSTS=max-age=31536000 HN_SITE_CERT=$C/one.pem HN_SITE_KEY=$C/one.key hn_node tls tls.mjs

# ---- 4. SIGHUP: a new certificate ----------------------------------------------------------------
subject() { sclient "$1" | sed -n 's/^subject=//p' | sed -n 1p; }
hn_assert_eq "before: the collector shows certificate one" "CN = herenow test one" "$(subject "$HTTPS")"
# a live stream and a chat downlink, open across the reload
TK=$(curl -fsS --cacert "$C/ca.pem" -X POST -H "Authorization: Bearer $TOK" "$A/api/visitor-tracking/widgets/$WID/active-visitors/stream/ticket" | jq -r .ticket)
hn_spawn stream curl -sN --cacert "$C/ca.pem" "$A/api/visitor-tracking/widgets/$WID/active-visitors/stream?ticket=$TK"
SID=tlsreloadsession01
hn_spawn downlink curl -sN --cacert "$C/ca.pem" "$B/v?k=$KEY&s=$SID"
hn_wait_for 5 "the live stream is open (its first event)" grep -q '^event: ' "$HN_TMP/stream.log"
hn_wait_for 5 "the downlink is open" grep -q '^: ready' "$HN_TMP/downlink.log"

cp "$C/two.pem" "$C/live.pem.new" && mv "$C/live.pem.new" "$C/live.pem"
cp "$C/two.key" "$C/live.key.new" && mv "$C/live.key.new" "$C/live.key"
kill -HUP "$HN_PID_collector" "$HN_PID_api"
hn_wait_for 5 "after SIGHUP: new connections to the collector get certificate two" \
    bash -c "openssl s_client -connect 127.0.0.1:$HTTPS </dev/null 2>/dev/null | grep -q '^subject=CN = herenow test two'"
hn_wait_for 5 "after SIGHUP: new connections to the api get certificate two" \
    bash -c "openssl s_client -connect 127.0.0.1:$APIS </dev/null 2>/dev/null | grep -q '^subject=CN = herenow test two'"
hn_assert_cmd "the collector logged the reload" grep -q "event=tls_reloaded subject='/CN=herenow test two'" "$HN_TMP/collector.log"
hn_assert_cmd "the api logged the reload" grep -q "event=tls_reloaded subject='/CN=herenow test two'" "$HN_TMP/api.log"
hn_assert_cmd "the live stream opened before is still open" hn_alive "$HN_PID_stream"
hn_assert_cmd "the downlink opened before is still open" hn_alive "$HN_PID_downlink"
# a visitor arrives: on the old stream; the agent invites them: on the old downlink
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
mp() { local hex; hex=$("$HN_BIN/herenowctl" send --dry-run "$@" | sed -n 2p); printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")"; }
mp --key "$KEY" --session "$SID" --url https://127.0.0.1/after-reload >"$HN_TMP/pv"
hn_assert_eq "a beacon over HTTPS after the reload: taken" 200 "$(code --cacert "$C/ca.pem" -A "$UA" --data-binary "@$HN_TMP/pv" "$B/b")"
hn_wait_for 5 "the live stream opened before the reload delivers the new visitor" grep -q "$SID" "$HN_TMP/stream.log"
st=$(curl -s -o "$HN_TMP/inv" -w '%{http_code}' --cacert "$C/ca.pem" -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' -d '{"text":"After the reload"}' "$A/api/visitor-tracking/sessions/$SID/chat")
hn_assert_eq "an invitation over the api's HTTPS port: 201" 201 "$st"
hn_wait_for 5 "the downlink opened before the reload delivers it" grep -q 'After the reload' "$HN_TMP/downlink.log"

# a broken pair on SIGHUP: the old certificate stays, the failure is said and counted
cp "$C/one.key" "$C/live.key.new" && mv "$C/live.key.new" "$C/live.key"   # one's key, two's certificate
kill -HUP "$HN_PID_collector"
hn_wait_for 5 "a failed reload is logged with its reason" grep -q "event=tls_reload_failed err='HERENOW_TLS_KEY .*key values mismatch" "$HN_TMP/collector.log"
hn_assert_eq "… and counted" 1 "$(metric "http://127.0.0.1:$ADMIN/metrics" herenow_tls_reload_failures_total)"
hn_assert_eq "… and certificate two still served" "CN = herenow test two" "$(subject "$HTTPS")"
hn_assert_eq "… and HTTPS still answers" 200 "$(code --cacert "$C/ca.pem" "$B/h.js")"

kill -TERM "$HN_PID_stream" "$HN_PID_downlink" 2>/dev/null || true

# ---- 5. the proxy recipe: scripts/nginx/herenow.conf in front of the plain ports ------------
hn_need nginx nginx-light
NC=$(hn_free_port); NA=$(hn_free_port)
N=$HN_TMP/nginx
mkdir -p "$N"
# the recipe as an operator would install it: ports, names, certificate paths and upstreams set
sed -e "s|listen 443 ssl; *# track|listen 127.0.0.1:$NC ssl;|" -e "s|listen 443 ssl; *# admin|listen 127.0.0.1:$NA ssl;|" \
    -e '/listen \[::\]:443 ssl;/d' -e "s|/etc/ssl/herenow/fullchain.pem|$C/one.pem|" -e "s|/etc/ssl/herenow/privkey.pem|$C/one.key|" \
    -e "s|server 127.0.0.1:7470;|server 127.0.0.1:$HTTP;|" -e "s|server 127.0.0.1:7480;|server 127.0.0.1:${HN_API_URL##*:};|" \
    "$HN_ROOT/scripts/nginx/herenow.conf" >"$N/herenow.conf"
hn_assert_eq "the recipe: every port, path and upstream substituted" "" \
    "$(grep -nE 'listen 443|/etc/ssl|:7470|:7480' "$N/herenow.conf" || true)"
cat >"$N/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/error.log warn;
$( [ "$(id -u)" = 0 ] && echo 'user root;' )
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    client_body_temp_path $N/body;
    proxy_temp_path $N/proxy;
    fastcgi_temp_path $N/fastcgi;
    uwsgi_temp_path $N/uwsgi;
    scgi_temp_path $N/scgi;
    include $N/herenow.conf;
}
NGINX
hn_assert_cmd "nginx -t accepts the recipe" nginx -t -q -c "$N/nginx.conf" -p "$N"
hn_spawn nginx nginx -c "$N/nginx.conf" -p "$N"
hn_wait_for 10 "nginx answers for the api" curl -fsS --cacert "$C/ca.pem" "https://127.0.0.1:$NA/livez"
hn_assert_eq "through nginx: HSTS on the dashboard" "max-age=31536000" "$(hdr --cacert "$C/ca.pem" "https://127.0.0.1:$NA/")"
echo "# tests/browser/tls.mjs (through nginx)"
NODE_EXTRA_CA_CERTS=$C/ca.pem HN_API=https://127.0.0.1:$NA HN_COLLECTOR=https://127.0.0.1:$NC HN_TOKEN=$TOK \
    HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY HN_SPKI=$SPKI HN_HSTS=max-age=31536000 HN_TAG=nginx \
    HN_SITE_CERT=$C/one.pem HN_SITE_KEY=$C/one.key hn_node tls_nginx tls.mjs
hn_done
