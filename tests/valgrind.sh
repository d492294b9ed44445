#!/usr/bin/env bash
# valgrind.sh: every unit-test binary under valgrind (`make valgrind`):
# memory errors and definite or indirect leaks fail it. PCRE2's JIT is off
# (HN_UAP_NO_JIT=1, HN_RULE_NO_JIT=1): valgrind cannot follow JIT-made code. Prints one line
# per binary and "valgrind: N clean, M with findings"; exit 1 on any finding.
set -uo pipefail
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)"; exit 1; }
clean=0 bad=0
for t in "$@"; do
    log=$(mktemp)
    HN_UAP_NO_JIT=1 HN_RULE_NO_JIT=1 valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --error-exitcode=99 "$t" >/dev/null 2>"$log"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        clean=$((clean + 1))
        echo "ok   $(basename "$t")"
    else
        bad=$((bad + 1))
        echo "FAIL $(basename "$t") (exit $rc)"
        grep -E "^==[0-9]+== [A-Z]|definitely|indirectly" "$log" | head -10
    fi
    rm -f "$log"
done
echo "valgrind: $clean clean, $bad with findings"
[ "$bad" -eq 0 ]
