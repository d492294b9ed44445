#!/usr/bin/env bash
# test_token.sh: herenowctl token create|list|revoke against a real
# PostgreSQL: the token is printed once and stored only as its SHA-256,
# scopes, list without secrets, revoke, argument errors.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CTL="$HN_BIN/herenowctl"
[ -x "$CTL" ] || { hn_fail "$CTL is built"; hn_done; }

hn_start_redis      # widget add publishes to Redis
hn_start_pg

# run NAME CMD...: CMD's stdout, stderr and status in $HN_TMP/NAME.{out,err}
# and RUN_RC, without ending the test under set -e.
run() {
    local name=$1
    shift
    RUN_RC=0
    "$@" >"$HN_TMP/$name.out" 2>"$HN_TMP/$name.err" || RUN_RC=$?
}
out() { cat "$HN_TMP/$1.out"; }

TOKEN_RE='hn_[0-9A-Za-z]{12}_[0-9A-Za-z]{32}'

# digest_of TOKEN: hex SHA-256 of the token text, computed by PostgreSQL.
digest_of() { hn_psql "SELECT encode(sha256(convert_to('$1', 'UTF8')), 'hex')"; }
stored_digest() { hn_psql "SELECT encode(token_sha256, 'hex') FROM api_tokens WHERE id = '$1'"; }

run migrate "$CTL" migrate
hn_assert_eq "migrate exits 0" 0 "$RUN_RC"
run add "$CTL" widget add --name "Site A" --domain a.example.com
wid=$(awk '$1 == "id:" { print $2 }' "$HN_TMP/add.out")
hn_assert_cmd "widget add gives an id" grep -Eqx '[0-9]+' <<<"$wid"

# ---- create --all ------------------------------------------------------------

run all "$CTL" token create --all --name "ops script"
hn_assert_eq "create --all exits 0" 0 "$RUN_RC"
hn_assert_eq "create prints exactly one line" 1 "$(out all | wc -l)"
tok_all=$(out all)
hn_assert_cmd "the line is the token alone" grep -Eqx "$TOKEN_RE" <<<"$tok_all"
id_all=${tok_all:3:12}
hn_assert_cmd "stderr says it is shown once" grep -q 'shown only once' "$HN_TMP/all.err"
hn_assert_cmd "stderr names the id" grep -q "$id_all" "$HN_TMP/all.err"
hn_assert_cmd "stderr does not carry the token" bash -c "! grep -qF -- '$tok_all' '$HN_TMP/all.err'"
hn_assert_eq "the row: id, scope all, name, not revoked" "$id_all||ops script|t" \
    "$(hn_psql "SELECT id, widget_id, name, revoked_at IS NULL FROM api_tokens WHERE id = '$id_all'")"
hn_assert_eq "stored digest is SHA-256 of the printed token" "$(digest_of "$tok_all")" \
    "$(stored_digest "$id_all")"
hn_assert_eq "stored digest is 32 bytes" 32 \
    "$(hn_psql "SELECT length(token_sha256) FROM api_tokens WHERE id = '$id_all'")"
secret_all=${tok_all:16}
hn_assert_eq "the token's secret is nowhere in the table" 0 \
    "$(hn_psql "SELECT count(*) FROM api_tokens t WHERE strpos(t::text, '$secret_all') > 0")"

# The script-friendly form the docs promise.
tok2=$("$CTL" token create --all 2>/dev/null)
hn_assert_cmd "tok=\$(herenowctl token create --all) is exactly the token" grep -Eqx "$TOKEN_RE" <<<"$tok2"
hn_assert_cmd "two tokens differ" test "$tok2" != "$tok_all"
hn_assert_eq "name defaults to empty" "" \
    "$(hn_psql "SELECT name FROM api_tokens WHERE id = '${tok2:3:12}'")"

# ---- create --widget ---------------------------------------------------------

run w "$CTL" token create --widget "$wid" --name "dashboard A"
hn_assert_eq "create --widget exits 0" 0 "$RUN_RC"
tok_w=$(out w)
hn_assert_cmd "create --widget prints the token alone" grep -Eqx "$TOKEN_RE" <<<"$tok_w"
id_w=${tok_w:3:12}
hn_assert_eq "the row is scoped to the widget" "$wid|dashboard A" \
    "$(hn_psql "SELECT widget_id, name FROM api_tokens WHERE id = '$id_w'")"
hn_assert_eq "its digest matches" "$(digest_of "$tok_w")" "$(stored_digest "$id_w")"

# ---- --json --------------------------------------------------------------------

evil="x'); DROP TABLE api_tokens; -- \"q\""
run j "$CTL" token create --widget "$wid" --name "$evil" --json
hn_assert_eq "create --json exits 0" 0 "$RUN_RC"
hn_assert_eq "create --json prints one line" 1 "$(out j | wc -l)"
jtok=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$HN_TMP/j.out")
jid=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$HN_TMP/j.out")
hn_assert_cmd "create --json: token field" grep -Eqx "$TOKEN_RE" <<<"$jtok"
hn_assert_eq "create --json: id is the token's" "${jtok:3:12}" "$jid"
hn_assert_cmd "create --json: the object" grep -Eqx \
    "\\{\"id\":\"$jid\",\"token\":\"$jtok\",\"widget_id\":$wid,\"name\":\"x'\\); DROP TABLE api_tokens; -- \\\\\"q\\\\\"\",\"created_at\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\"\\}" \
    "$HN_TMP/j.out"
hn_assert_eq "create --json: digest matches" "$(digest_of "$jtok")" "$(stored_digest "$jid")"
hn_assert_eq "the name is stored verbatim (bound parameter)" "$evil" \
    "$(hn_psql "SELECT name FROM api_tokens WHERE id = '$jid'")"
run ja "$CTL" token create --all --json
hn_assert_cmd "create --all --json: widget_id is null" grep -q '"widget_id":null,"name":""' "$HN_TMP/ja.out"

# ---- list ------------------------------------------------------------------------

run list "$CTL" token list
hn_assert_eq "list exits 0" 0 "$RUN_RC"
hn_assert_cmd "list has a header" grep -Eq '^ID +SCOPE +NAME +CREATED +REVOKED$' "$HN_TMP/list.out"
hn_assert_cmd "list shows the all-widgets token" \
    grep -Eq "^$id_all +all +ops script +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +-$" "$HN_TMP/list.out"
hn_assert_cmd "list shows the widget token" \
    grep -Eq "^$id_w +$wid +dashboard A +[0-9-]{10}T[0-9:]{8}Z +-$" "$HN_TMP/list.out"
hn_assert_eq "list has one line per token" "$(($(hn_psql 'SELECT count(*) FROM api_tokens') + 1))" \
    "$(out list | wc -l)"
hn_assert_cmd "list shows no token" bash -c "! grep -Eq '$TOKEN_RE|hn_' '$HN_TMP/list.out'"
hn_assert_cmd "list shows no secret" bash -c "! grep -qF -e '${tok_all:16}' -e '${tok_w:16}' '$HN_TMP/list.out'"
hn_assert_cmd "list shows no digest" bash -c "! grep -qF '$(stored_digest "$id_all")' '$HN_TMP/list.out'"

run listj "$CTL" token list --json
hn_assert_eq "list --json exits 0" 0 "$RUN_RC"
hn_assert_cmd "list --json has the widget token" grep -Eq \
    "\\{\"id\":\"$id_w\",\"widget_id\":$wid,\"name\":\"dashboard A\",\"created_at\":\"[^\"]+\",\"revoked_at\":null\\}" \
    "$HN_TMP/listj.out"
hn_assert_cmd "list --json has the all token with widget_id null" grep -q \
    "{\"id\":\"$id_all\",\"widget_id\":null,\"name\":\"ops script\"" "$HN_TMP/listj.out"
hn_assert_cmd "list --json shows no token" bash -c "! grep -q 'hn_' '$HN_TMP/listj.out'"
if command -v python3 >/dev/null; then
    hn_assert_cmd "list --json is valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$HN_TMP/listj.out"
    hn_assert_cmd "create --json is valid JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$HN_TMP/j.out"
fi

# ---- revoke ----------------------------------------------------------------------

run rv "$CTL" token revoke --id "$id_w"
hn_assert_eq "revoke --id exits 0" 0 "$RUN_RC"
hn_assert_cmd "revoke says so" grep -Eq "^revoked $id_w at [0-9-]{10}T[0-9:]{8}Z$" "$HN_TMP/rv.out"
hn_assert_eq "revoked_at is set" "t" \
    "$(hn_psql "SELECT revoked_at IS NOT NULL FROM api_tokens WHERE id = '$id_w'")"
hn_assert_eq "the other tokens are untouched" "t" \
    "$(hn_psql "SELECT revoked_at IS NULL FROM api_tokens WHERE id = '$id_all'")"
run rv2 "$CTL" token revoke --id "$id_w"
hn_assert_eq "revoke twice exits 1" 1 "$RUN_RC"
hn_assert_cmd "revoke twice says already revoked" grep -q "^herenowctl: .*already revoked" "$HN_TMP/rv2.err"
run rvpos "$CTL" token revoke "${tok2:3:12}"
hn_assert_eq "revoke ID (positional) exits 0" 0 "$RUN_RC"
run rvunknown "$CTL" token revoke --id AAAAAAAAAAAA
hn_assert_eq "revoke of an unknown id exits 1" 1 "$RUN_RC"
hn_assert_cmd "revoke of an unknown id says so" grep -q "^herenowctl: .*no token with id AAAAAAAAAAAA" "$HN_TMP/rvunknown.err"

run list2 "$CTL" token list
hn_assert_cmd "list shows the revoked token's time" \
    grep -Eq "^$id_w +$wid +dashboard A +[0-9-]{10}T[0-9:]{8}Z +[0-9-]{10}T[0-9:]{8}Z$" "$HN_TMP/list2.out"
run listj2 "$CTL" token list --json
hn_assert_cmd "list --json shows revoked_at" grep -Eq "\"id\":\"$id_w\".*\"revoked_at\":\"[0-9-]{10}T" "$HN_TMP/listj2.out"

# ---- errors ----------------------------------------------------------------------

# expect_usage DESC CMD...: exits 2, says something on stderr, nothing on stdout.
expect_usage() {
    local desc=$1
    shift
    run bad "$@"
    hn_assert_eq "$desc: exits 2" 2 "$RUN_RC"
    hn_assert_cmd "$desc: explains on stderr" grep -q '^herenowctl: ' "$HN_TMP/bad.err"
    hn_assert_eq "$desc: nothing on stdout" "" "$(out bad)"
}
ntok=$(hn_psql 'SELECT count(*) FROM api_tokens')
expect_usage "create without a scope" "$CTL" token create
hn_assert_cmd "missing scope names both flags" grep -q -- '--widget ID or --all' "$HN_TMP/bad.err"
expect_usage "create with both scopes" "$CTL" token create --all --widget "$wid"
expect_usage "create with a bad widget id" "$CTL" token create --widget abc
expect_usage "create with widget id 0" "$CTL" token create --widget 0
expect_usage "create with --all=x" "$CTL" token create --all=x
expect_usage "create with a control character in the name" "$CTL" token create --all --name $'a\tb'
expect_usage "create with a positional argument" "$CTL" token create --all extra
expect_usage "create with an unknown flag" "$CTL" token create --all --colour red
expect_usage "token without subcommand" "$CTL" token
expect_usage "unknown token subcommand" "$CTL" token delete
expect_usage "list with a positional argument" "$CTL" token list all
expect_usage "revoke without an id" "$CTL" token revoke
expect_usage "revoke with two ids" "$CTL" token revoke "$id_all" --id "$id_all"
expect_usage "revoke with a malformed id" "$CTL" token revoke --id short
expect_usage "revoke given the whole token" "$CTL" token revoke "$tok_all"
hn_assert_cmd "the pasted token is not echoed" bash -c "! grep -qF -- '$tok_all' '$HN_TMP/bad.err'"
hn_assert_eq "usage errors created nothing" "$ntok" "$(hn_psql 'SELECT count(*) FROM api_tokens')"
hn_assert_eq "usage errors revoked nothing" "t" \
    "$(hn_psql "SELECT revoked_at IS NULL FROM api_tokens WHERE id = '$id_all'")"

run nowidget "$CTL" token create --widget 999999 --name x
hn_assert_eq "create for an unknown widget exits 1" 1 "$RUN_RC"
hn_assert_cmd "create for an unknown widget says so" grep -q '^herenowctl: .*no widget with id 999999' "$HN_TMP/nowidget.err"
hn_assert_eq "create for an unknown widget prints no token" "" "$(out nowidget)"
hn_assert_eq "create for an unknown widget stores nothing" "$ntok" "$(hn_psql 'SELECT count(*) FROM api_tokens')"

run help "$CTL" token --help
hn_assert_eq "token --help exits 0" 0 "$RUN_RC"
hn_assert_cmd "token --help shows create" grep -q 'herenowctl token create (--widget ID | --all)' "$HN_TMP/help.out"
run mainhelp "$CTL" --help
hn_assert_cmd "herenowctl --help lists token" grep -Eq '^  token +create, list and revoke API tokens$' "$HN_TMP/mainhelp.out"

run nopg env HERENOW_DATABASE_URL="postgresql://postgres@127.0.0.1:1/herenow" "$CTL" token create --all
hn_assert_eq "unreachable PostgreSQL: exits 1" 1 "$RUN_RC"
hn_assert_eq "unreachable PostgreSQL: prints no token" "" "$(out nopg)"

# A token whose output cannot be written is not stored (the insert rolls back).
if [ -w /dev/full ]; then
    ntok=$(hn_psql 'SELECT count(*) FROM api_tokens')
    rc=0
    "$CTL" token create --all --name full >/dev/full 2>"$HN_TMP/full.err" || rc=$?
    hn_assert_eq "stdout full: exits 1" 1 "$rc"
    hn_assert_eq "stdout full: nothing stored" "$ntok" "$(hn_psql 'SELECT count(*) FROM api_tokens')"
fi

hn_done
