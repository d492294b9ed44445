#!/usr/bin/env bash
# test_ctl.sh: herenowctl against a real PostgreSQL and Redis: migrate,
# widget add/list/sync, argument errors, bound SQL parameters, send.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

CTL="$HN_BIN/herenowctl"
[ -x "$CTL" ] || { hn_fail "$CTL is built"; hn_done; }

hn_start_redis
hn_start_pg
export HERENOW_PUBLIC_URL="https://collector.example.test/"

# run NAME CMD...: CMD's stdout, stderr and status in $HN_TMP/NAME.{out,err}
# and RUN_RC, without ending the test under set -e.
run() {
    local name=$1
    shift
    RUN_RC=0
    "$@" >"$HN_TMP/$name.out" 2>"$HN_TMP/$name.err" || RUN_RC=$?
}
out() { cat "$HN_TMP/$1.out"; }
err() { cat "$HN_TMP/$1.err"; }

# ---- migrate ---------------------------------------------------------------

run migrate1 "$CTL" migrate
hn_assert_eq "migrate exits 0" 0 "$RUN_RC"
hn_assert_cmd "migrate says it applied 001_widgets" grep -q '^applied 001_widgets$' "$HN_TMP/migrate1.out"
hn_assert_eq "schema_migrations has 001 widgets" "1|widgets" \
    "$(hn_psql 'SELECT version, name FROM schema_migrations ORDER BY version' | head -n1)"
hn_assert_eq "widget_configs exists" "widget_configs" \
    "$(hn_psql "SELECT to_regclass('public.widget_configs')")"
nmig=$(hn_psql 'SELECT count(*) FROM schema_migrations')

run migrate2 "$CTL" migrate
hn_assert_eq "second migrate exits 0" 0 "$RUN_RC"
hn_assert_cmd "second migrate says up to date" grep -q '^up to date' "$HN_TMP/migrate2.out"
hn_assert_eq "second migrate applies nothing" "" "$(grep '^applied' "$HN_TMP/migrate2.out" || true)"
hn_assert_eq "schema_migrations row count unchanged" "$nmig" \
    "$(hn_psql 'SELECT count(*) FROM schema_migrations')"

# Two migrates at once on a fresh database: the advisory lock serializes
# them, exactly one applies each migration, neither fails.
hn_psql 'CREATE DATABASE race' >/dev/null
race_url="postgresql://postgres@127.0.0.1:$HN_PG_PORT/race"
HERENOW_DATABASE_URL=$race_url "$CTL" migrate >"$HN_TMP/race1.out" 2>&1 & r1=$!
HERENOW_DATABASE_URL=$race_url "$CTL" migrate >"$HN_TMP/race2.out" 2>&1 & r2=$!
rc1=0; wait "$r1" || rc1=$?
rc2=0; wait "$r2" || rc2=$?
hn_assert_eq "concurrent migrates both exit 0" "0 0" "$rc1 $rc2"
hn_assert_eq "concurrent migrates apply 001 exactly once" 1 \
    "$(cat "$HN_TMP/race1.out" "$HN_TMP/race2.out" | grep -c '^applied 001_widgets$' || true)"
hn_assert_eq "concurrent migrates record each version once" "$nmig" \
    "$(HERENOW_DATABASE_URL=$race_url hn_psql 'SELECT count(*) FROM schema_migrations')"

run mstatus "$CTL" migrate --status
hn_assert_cmd "migrate --status lists 001 as applied" \
    grep -Eq '^001_widgets +[0-9]{4}-[0-9]{2}-[0-9]{2}T' "$HN_TMP/mstatus.out"

# ---- widget add --------------------------------------------------------------

run add "$CTL" widget add --name "My Site" --domain example.com
hn_assert_eq "widget add exits 0" 0 "$RUN_RC"
key=$(awk '$1 == "key:" { print $2 }' "$HN_TMP/add.out")
id=$(awk '$1 == "id:" { print $2 }' "$HN_TMP/add.out")
hn_assert_cmd "widget add prints a 16-char base62 key" grep -Eqx '[0-9A-Za-z]{16}' <<<"$key"
hn_assert_cmd "widget add prints a numeric id" grep -Eqx '[0-9]+' <<<"$id"
hn_assert_eq "widget add prints the embed snippet" \
    "snippet: <script src=\"https://collector.example.test/h.js\" data-widget=\"$key\" async></script>" \
    "$(grep '^snippet:' "$HN_TMP/add.out")"
hn_assert_eq "the row is in widget_configs" "$id|My Site|example.com|395" \
    "$(hn_psql "SELECT id, name, domain, retention_days FROM widget_configs WHERE key = '$key'")"
hn_assert_eq "HGET hn:widgets KEY is the id" "$id" "$(hn_redis HGET hn:widgets "$key")"

run add2 "$CTL" widget add --name "Shop" --domain shop.example.com --retention-days 30
key2=$(awk '$1 == "key:" { print $2 }' "$HN_TMP/add2.out")
id2=$(awk '$1 == "id:" { print $2 }' "$HN_TMP/add2.out")
hn_assert_eq "second widget gets its own id and retention" "$id2|30" \
    "$(hn_psql "SELECT id, retention_days FROM widget_configs WHERE key = '$key2'")"
hn_assert_cmd "keys differ" test "$key" != "$key2"

# ---- widget set ----------------------------------------------------------------

run set1 "$CTL" widget set --widget "$key2" --chat on --agent-name "Ana (support)" --chat-retention-days 7
hn_assert_eq "widget set exits 0" 0 "$RUN_RC"
hn_assert_eq "widget set: the settings in PostgreSQL" 'on|Ana (support)|7' \
    "$(hn_psql "SELECT concat_ws('|', settings->>'chat', settings->>'agent_name', settings->>'chat_retention_days') FROM widget_configs WHERE key = '$key2'")"
hn_assert_eq "widget set: hn:widgets says chat=on" "$id2 chat=on" "$(hn_redis HGET hn:widgets "$key2")"
run set2 "$CTL" widget set --widget "$id2" --honor-dnt no
hn_assert_eq "widget set by id keeps the other settings" "$id2 dnt=off chat=on|Ana (support)" \
    "$(hn_redis HGET hn:widgets "$key2")|$(hn_psql "SELECT settings->>'agent_name' FROM widget_configs WHERE key = '$key2'")"
run set3 "$CTL" widget set --widget "$key2" --chat off --honor-dnt yes
hn_assert_eq "widget set --chat off: hn:widgets without chat=on" "$id2" "$(hn_redis HGET hn:widgets "$key2")"
run set4 "$CTL" widget set --widget nosuchwidget --chat on
hn_assert_eq "widget set of an unknown widget exits 1 and says so" "1 yes" \
    "$RUN_RC $(grep -q "no widget with key or id 'nosuchwidget'" "$HN_TMP/set4.err" && echo yes)"

# ---- widget list -------------------------------------------------------------

run list "$CTL" widget list
hn_assert_eq "widget list exits 0" 0 "$RUN_RC"
hn_assert_cmd "widget list has a header" grep -Eq '^ID +KEY +NAME +DOMAIN +CREATED$' "$HN_TMP/list.out"
hn_assert_cmd "widget list shows the widget" \
    grep -Eq "^$id +$key +My Site +example.com +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$" "$HN_TMP/list.out"
# aligned: the KEY column starts at the same offset on every line
hn_assert_eq "widget list is aligned" 1 \
    "$(awk '{ print index($0, $2) }' "$HN_TMP/list.out" | sort -u | wc -l)"

run listjson "$CTL" widget list --json
hn_assert_cmd "widget list --json has the widget" \
    grep -q "{\"id\":$id,\"key\":\"$key\",\"name\":\"My Site\",\"domain\":\"example.com\",\"created_at\":\"" \
    "$HN_TMP/listjson.out"

# ---- widget sync -------------------------------------------------------------

hn_redis DEL hn:widgets >/dev/null
hn_redis HSET hn:widgets stale-key 999 >/dev/null
run sync "$CTL" widget sync
hn_assert_eq "widget sync exits 0" 0 "$RUN_RC"
hn_assert_eq "sync restores the widget" "$id" "$(hn_redis HGET hn:widgets "$key")"
hn_assert_eq "sync restores the second widget" "$id2" "$(hn_redis HGET hn:widgets "$key2")"
hn_assert_eq "sync removes keys not in PostgreSQL" 0 "$(hn_redis HEXISTS hn:widgets stale-key)"
hn_assert_cmd "sync reports what it did" grep -q '2 widgets (2 added, 0 updated, 1 removed)' "$HN_TMP/sync.out"
hn_redis HSET hn:widgets "$key" 12345 >/dev/null
run sync2 "$CTL" widget sync
hn_assert_eq "sync fixes a wrong id" "$id" "$(hn_redis HGET hn:widgets "$key")"
run sync3 "$CTL" widget sync
hn_assert_cmd "sync of a synced hash changes nothing" grep -q '(0 added, 0 updated, 0 removed)' "$HN_TMP/sync3.out"

# ---- bound parameters ----------------------------------------------------------

evil="x'); DROP TABLE widget_configs; --"
run evil "$CTL" widget add --name "$evil" --domain d
hn_assert_eq "widget add with quotes in the name exits 0" 0 "$RUN_RC"
evil_key=$(awk '$1 == "key:" { print $2 }' "$HN_TMP/evil.out")
hn_assert_eq "the name is stored verbatim" "$evil" \
    "$(hn_psql "SELECT name FROM widget_configs WHERE key = '$evil_key'")"
hn_assert_eq "widget_configs is still there" 3 "$(hn_psql 'SELECT count(*) FROM widget_configs')"

# ---- argument errors ------------------------------------------------------------

# expect_usage DESC CMD...: exits 2, says something on stderr, nothing on stdout.
expect_usage() {
    local desc=$1
    shift
    run bad "$@"
    hn_assert_eq "$desc: exits 2" 2 "$RUN_RC"
    hn_assert_cmd "$desc: explains on stderr" grep -q '^herenowctl: ' "$HN_TMP/bad.err"
    hn_assert_eq "$desc: nothing on stdout" "" "$(out bad)"
}
expect_usage "widget add without --name" "$CTL" widget add --domain example.com
hn_assert_cmd "missing --name is named" grep -q -- '--name' "$HN_TMP/bad.err"
expect_usage "unknown command" "$CTL" frobnicate
hn_assert_cmd "unknown command is named" grep -q "unknown command 'frobnicate'" "$HN_TMP/bad.err"
expect_usage "no command" "$CTL"
expect_usage "unknown widget subcommand" "$CTL" widget remove
expect_usage "unknown flag" "$CTL" widget add --name a --domain b --colour red
expect_usage "flag without value" "$CTL" widget add --name a --domain
expect_usage "widget set without a setting" "$CTL" widget set --widget abc
expect_usage "widget set --chat maybe" "$CTL" widget set --widget abc --chat maybe
expect_usage "positional argument" "$CTL" migrate now
expect_usage "bad config value" "$CTL" --log-level loud migrate
expect_usage "send without --key" "$CTL" send
expect_usage "send with a bad --type" "$CTL" send --key "$key" --type jump
expect_usage "send ev without --event" "$CTL" send --key "$key" --type ev
expect_usage "send with a short --session" "$CTL" send --key "$key" --session abc
expect_usage "send with a bad --seq" "$CTL" send --key "$key" --seq -1
expect_usage "send with --to without port" "$CTL" send --key "$key" --to 127.0.0.1
hn_assert_cmd "bad --to is explained" grep -q "bad --to '127.0.0.1'" "$HN_TMP/bad.err"
expect_usage "send with --to port out of range" "$CTL" send --key "$key" --to 127.0.0.1:70000
expect_usage "send with --to unresolvable host" "$CTL" send --key "$key" --to no-such-host.invalid:7470
hn_assert_cmd "unresolvable --to is explained" grep -q "cannot resolve 'no-such-host.invalid'" "$HN_TMP/bad.err"

run help "$CTL" --help
hn_assert_eq "--help exits 0" 0 "$RUN_RC"
hn_assert_cmd "--help lists the settings" grep -q 'HERENOW_DATABASE_URL' "$HN_TMP/help.out"
hn_assert_cmd "--help lists the commands" grep -q 'herenowctl widget add' "$HN_TMP/help.out"

# ---- failures of the servers ------------------------------------------------------

run nopg env HERENOW_DATABASE_URL="postgresql://postgres@127.0.0.1:1/herenow" "$CTL" widget list
hn_assert_eq "unreachable PostgreSQL: exits 1" 1 "$RUN_RC"
hn_assert_cmd "unreachable PostgreSQL: says so" grep -q 'cannot connect to PostgreSQL' "$HN_TMP/nopg.err"
before=$(hn_psql 'SELECT count(*) FROM widget_configs')
run noredis env HERENOW_REDIS_URL="redis://127.0.0.1:1/0" "$CTL" widget add --name n --domain d
hn_assert_eq "unreachable Redis: widget add exits 1" 1 "$RUN_RC"
hn_assert_eq "unreachable Redis: no widget created" "$before" "$(hn_psql 'SELECT count(*) FROM widget_configs')"

# ---- send ---------------------------------------------------------------------------

port=$(hn_free_port)
run send1 "$CTL" send --key "$key" --to "127.0.0.1:$port" --session sess_0001 --url https://example.com/a
hn_assert_eq "send exits 0" 0 "$RUN_RC"
hn_assert_cmd "send reports the beacon" grep -q '^sent t=pv q=1 s=sess_0001 k=' "$HN_TMP/send1.out"
run sendn "$CTL" send --key "$key" --type hb --seq 5 --count 3 --engaged 100 --dry-run
hn_assert_eq "send --count 3 packs q=5..7" "5 6 7" \
    "$(sed -n 's/^packed .* q=\([0-9]*\) .*/\1/p' "$HN_TMP/sendn.out" | paste -sd' ')"
hn_assert_cmd "send --engaged sets e" grep -q ' e=100 ' "$HN_TMP/sendn.out"
# Nothing listens on $port: the kernel's port-unreachable answer to the first
# datagram makes the next send fail, and send says so.
run refused "$CTL" send --key "$key" --to "127.0.0.1:$port" --count 5 --interval 20
hn_assert_eq "send to a port nobody listens on: exits 1" 1 "$RUN_RC"
hn_assert_cmd "send to a port nobody listens on: says so" \
    grep -q "nothing listens on UDP 127.0.0.1:$port" "$HN_TMP/refused.err"
run sendid "$CTL" send --key "$key" --type id --visitor-name "Ann" --email ann@example.com \
    --prop plan=pro --dry-run
hn_assert_eq "send --type id with identify fields is accepted" 0 "$RUN_RC"
run script "$CTL" send --key "$key" --to "[::1]:$port" --script --dry-run
hn_assert_eq "send --script --dry-run exits 0" 0 "$RUN_RC"
hn_assert_eq "the script's sequence" "pv hb ev pv hide show end" \
    "$(sed -n 's/^packed t=\([a-z]*\) .*/\1/p' "$HN_TMP/script.out" | paste -sd' ')"
hn_assert_eq "the script's q increase" "1 2 3 4 5 6 7" \
    "$(sed -n 's/^packed .* q=\([0-9]*\) .*/\1/p' "$HN_TMP/script.out" | paste -sd' ')"
hn_assert_eq "the decoder accepts every scripted beacon" 7 "$(grep -c '^decoder: accepted$' "$HN_TMP/script.out" || true)"
hn_assert_cmd "the script opens the chat" grep -q 'n=chat_opened' "$HN_TMP/script.out"

hn_done
