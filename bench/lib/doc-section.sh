# doc-section.sh: sourced by the bench scripts.
#
# bench_write_section HEADING FILE DOC: replaces the section of DOC that
# starts at the line HEADING (up to the next "## " heading) with FILE's
# contents, or appends it when DOC has no such section yet.
bench_write_section() {
    local sec=$1 file=$2 doc=$3 tmp
    mkdir -p "$(dirname "$doc")"
    [ -f "$doc" ] || printf '# Benchmarks\n' >"$doc"
    tmp=$(mktemp)
    awk -v sec="$sec" -v file="$file" '
        function emit(  l) { while ((getline l < file) > 0) print l; close(file); done = 1 }
        $0 == sec { skip = 1; emit(); next }
        skip && /^## / { skip = 0; print ""; }
        !skip { print }
        END { if (!done) { print ""; emit() } }' "$doc" >"$tmp"
    cat "$tmp" >"$doc"
    rm -f "$tmp"
}

# median of the numbers on stdin
bench_median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_pg_run_line START LOAD: the "Run …" line of a PostgreSQL bench's section
bench_pg_run_line() {
    echo "Run $1 on $(nproc) cores, PostgreSQL $("${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/postgres" --version | awk '{ print $3 }') (fsync on, default settings), load average before $2."
}
