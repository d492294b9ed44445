# udp-report.awk: medians and tables for bench/udp.sh.
#
# Input: one run per line, "key=value" pairs separated by spaces (udp.sh's
# rows file). Runs are grouped by (threads, rate) in the order first seen;
# every numeric key gets the median of its group, and the worst (largest)
# loss and kernel drops are kept as well.
#
#   awk -v mode=console  -f udp-report.awk rows    the console table
#   awk -v mode=markdown -f udp-report.awk rows    the docs table and verdicts
#
# A row is saturated when a run saw kernel drops or accepted less than 97%
# of what was offered: the offered rate is above what the machine sustains,
# and the "no loss" target applies only to the rows that are not.

function median(g, key,   n, a, i, j, t) {
    n = cnt[g]
    for (i = 1; i <= n; i++) a[i] = val[g, i, key] + 0
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

{
    delete kv
    for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        if (eq) kv[substr($i, 1, eq - 1)] = substr($i, eq + 1)
    }
    g = kv["threads"] SUBSEP kv["rate"]
    if (!(g in cnt)) { order[++ng] = g; cnt[g] = 0; worst_loss[g] = 0; worst_kd[g] = 0; sat[g] = 0 }
    n = ++cnt[g]
    for (k in kv) { val[g, n, k] = kv[k]; keys[k] = 1 }
    if (kv["loss"] + 0 > worst_loss[g]) worst_loss[g] = kv["loss"] + 0
    if (kv["kdrops_proc"] + 0 > worst_kd[g]) worst_kd[g] = kv["kdrops_proc"] + 0
    if (kv["kdrops_proc"] + 0 > 0 || kv["accepted"] + 0 < 0.97 * kv["sent"]) sat[g] = 1
    threads[g] = kv["threads"]; rate[g] = kv["rate"]
}

function m(g, k) { return median(g, k) }

# "a–b", or "a" when both print the same.
function span(a, b, fmt,   x, y) {
    x = sprintf(fmt, a); y = sprintf(fmt, b)
    return x == y ? x : x "–" y
}

END {
    if (mode == "console") {
        printf "%-3s %-7s %4s %9s %9s %9s %5s %9s %7s %6s %6s %6s %6s %6s %6s %6s %5s %5s %5s %4s\n",
            "thr", "rate", "runs", "offered", "e2e/s", "ceil/s", "ratio", "kdrops", "loss", "col_us",
            "usr", "sys", "red_us", "pipe", "naive", "xadd", "c/n", "cmd/b", "batch", "sat"
        for (i = 1; i <= ng; i++) {
            g = order[i]
            printf "%-3s %-7s %4d %9.0f %9.0f %9.0f %5.2f %9.0f %7.0f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %5.2f %5.2f %5.1f %4s\n",
                threads[g], rate[g], cnt[g], m(g, "offered"), m(g, "e2e"), m(g, "ceiling"), m(g, "ratio"),
                m(g, "kdrops_proc"), worst_loss[g], m(g, "col_us"), m(g, "col_user_us"), m(g, "col_sys_us"),
                m(g, "redis_us"), m(g, "pipe_redis_us"), m(g, "naive_us"), m(g, "xadd_us"), m(g, "col_naive"),
                m(g, "cmds_b"), m(g, "batch"), (sat[g] ? "yes" : "no")
        }
        exit
    }

    # markdown
    print "| threads | offered/s | sessions | e2e/s | ceiling/s | e2e / ceiling | kernel drops | loss (worst run) | collector µs/b (user+sys) | Redis µs/b e2e | Redis µs/b via pipe | Redis µs/b naive | Redis µs/b xadd-only | collector / naive (via pipe) | naive / xadd-only replay b/s | Redis busy e2e / pipe | cmds/b | RESP B/b | records/flush | ref SET/s | saturated |"
    print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    best = top = ""
    for (i = 1; i <= ng; i++) {
        g = order[i]
        printf "| %s | %s%.0f | %.0f | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f (%.2f+%.2f) | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f / %.0f | %.0f%% / %.0f%% | %.2f | %.0f | %.1f | %.0f | %s |\n",
            threads[g], (rate[g] == "max" ? "max: " : ""), m(g, "offered"), m(g, "sessions"), m(g, "e2e"),
            m(g, "ceiling"), m(g, "ratio"), m(g, "kdrops_proc"), worst_loss[g], m(g, "col_us"),
            m(g, "col_user_us"), m(g, "col_sys_us"), m(g, "redis_us"), m(g, "pipe_redis_us"),
            m(g, "naive_us"), m(g, "xadd_us"), m(g, "col_naive"), m(g, "naive_bps"), m(g, "xadd_bps"),
            100 * m(g, "redis_busy"), 100 * m(g, "pipe_busy"), m(g, "cmds_b"), m(g, "resp_b"),
            m(g, "batch"), m(g, "ref_set"), (sat[g] ? "yes" : "no")
        if (top == "" || m(g, "e2e") > m(top, "e2e")) top = g
        if (sat[g] && (best == "" || m(g, "e2e") > m(best, "e2e"))) best = g
    }
    print ""
    print "Against the targets (medians):"
    print ""
    # The highest e2e of any row is what the pipeline sustained; when that
    # row was not saturated it is only a lower bound (the offered load was
    # the limit). Saturated rows also show how overload behaves: on a small
    # machine the flooding load generator takes CPU from both.
    r = m(top, "ratio")
    printf "- Highest end-to-end rate: %.0f beacons/s (%s thread(s), offered %s%s) = **%.2f × the ceiling** of %.0f/s measured in the same runs: %s (target ≥ 0.8).\n",
        m(top, "e2e"), threads[top], rate[top], (sat[top] ? ", saturated" : ", not saturated: a lower bound"),
        r, m(top, "ceiling"), (r >= 0.8 ? "met" : "missed")
    if (best == "")
        print "- No row reached saturation (add a higher rate to see overload)."
    else if (best != top)
        printf "- Under overload (offered %s, %s thread(s)): %.0f beacons/s = %.2f × the ceiling of %.0f/s.\n",
            rate[best], threads[best], m(best, "e2e"), m(best, "ratio"), m(best, "ceiling")
    cmin = cmax = rmin = rmax = ""
    for (i = 1; i <= ng; i++) {
        g = order[i]
        c = m(g, "col_us"); rr = m(g, "redis_us")
        if (cmin == "" || c < cmin) cmin = c
        if (cmax == "" || c > cmax) cmax = c
        if (rmin == "" || rr < rmin) rmin = rr
        if (rmax == "" || rr > rmax) rmax = rr
    }
    printf "- Collector CPU: %.2f–%.2f µs per beacon across rows: %s (target ≤ 2).\n", cmin, cmax,
        (cmax <= 2 ? "met" : (cmin <= 2 ? "met in some rows only" : "missed"))
    pmin = pmax = ""
    for (i = 1; i <= ng; i++) {
        p = m(order[i], "pipe_redis_us")
        if (pmin == "" || p < pmin) pmin = p
        if (pmax == "" || p > pmax) pmax = p
    }
    printf "- Redis CPU, absolute: %.2f–%.2f µs per beacon end to end, %.2f–%.2f fed by redis-cli --pipe: %s (target ≤ 4 µs, in the issue's figure, which was measured on another day and another keyspace; see the ratio below).\n",
        rmin, rmax, pmin, pmax, (rmax <= 4 ? "met" : (rmin <= 4 ? "met in some rows only" : "missed"))
    # The issue put the target as 4 µs against 7.5 µs for its naive pipeline
    # (XADD + HSET + EXPIRE + ZADD per beacon): the same target as a ratio
    # is 4 / 7.5 of the naive pipeline, measured here in the same run.
    tr = 4 / 7.5
    qmin = qmax = emin = emax = nmin = nmax = xmin = xmax = nbmin = nbmax = xbmin = xbmax = ""
    umin = umax = ""
    for (i = 1; i <= ng; i++) {
        g = order[i]
        q = m(g, "col_naive"); e = m(g, "e2e_naive")
        if (sat[g]) {
            if (qmin == "" || q < qmin) qmin = q
            if (qmax == "" || q > qmax) qmax = q
        } else {
            if (umin == "" || q < umin) umin = q
            if (umax == "" || q > umax) umax = q
            if (emin == "" || e < emin) emin = e
            if (emax == "" || e > emax) emax = e
        }
        v = m(g, "naive_us"); if (nmin == "" || v < nmin) nmin = v; if (nmax == "" || v > nmax) nmax = v
        v = m(g, "xadd_us"); if (xmin == "" || v < xmin) xmin = v; if (xmax == "" || v > xmax) xmax = v
        v = m(g, "naive_bps"); if (nbmin == "" || v < nbmin) nbmin = v; if (nbmax == "" || v > nbmax) nbmax = v
        v = m(g, "xadd_bps"); if (xbmin == "" || v < xbmin) xbmin = v; if (xbmax == "" || v > xbmax) xbmax = v
    }
    # The verdict comes from the unsaturated rows: only there do the
    # collector's tee and the references hold the same beacons (in saturated
    # rows the references replay every beacon sent, into a larger keyspace,
    # which flatters the ratio).
    if (umin != "") {
        printf "- Redis CPU, relative to the naive pipeline of the same beacons in the same run: collector (via pipe) / naive = %s in the unsaturated rows: %s (target ≤ %.2f × naive = 4 / 7.5, the issue's target over its own naive figure). End to end (unsaturated rows), Redis's CPU per beacon is %s × naive.%s\n",
            span(umin, umax, "%.2f"), (umax <= tr ? "met" : (umin <= tr ? "met in some rows only" : "missed")), tr,
            span(emin, emax, "%.2f"),
            (qmin == "" ? "" : sprintf(" Saturated rows: %s, not comparable (their references replay every beacon sent, the tee only those the kernel let in, so the references fill a larger keyspace).", span(qmin, qmax, "%.2f")))
    } else {
        printf "- Redis CPU, relative to the naive pipeline in the same run: collector (via pipe) / naive = %s, but every row was saturated, so the references replayed more beacons than the collector wrote: no verdict (target ≤ %.2f × naive = 4 / 7.5).\n",
            span(qmin, qmax, "%.2f"), tr
    }
    printf "- The references in this run: naive %s µs per beacon of Redis CPU, %s beacons/s replayed (the issue: 7.5 µs, ≈ 120 k/s); XADD only %s µs, %s beacons/s (the issue: ≈ 480 k/s).\n",
        span(nmin, nmax, "%.2f"), span(nbmin, nbmax, "%.0f"), span(xmin, xmax, "%.2f"), span(xbmin, xbmax, "%.0f")
    nunsat = 0; lossy = ""
    for (i = 1; i <= ng; i++) {
        g = order[i]
        if (sat[g]) continue
        nunsat++
        if (worst_loss[g] != 0) lossy = lossy sprintf(" %s@%s thread(s): %d;", rate[g], threads[g], worst_loss[g])
    }
    if (nunsat == 0) print "- Loss below saturation: no row was below saturation."
    else if (lossy == "") printf "- Loss below saturation: 0 in every run of the %d unsaturated row(s): met.\n", nunsat
    else printf "- Loss below saturation: missed:%s\n", lossy
    sl = ""
    for (i = 1; i <= ng; i++) {
        g = order[i]
        if (sat[g] && worst_loss[g] != 0)
            sl = sl sprintf(" %s@%s: worst loss %d; kernel drops %.0f per /proc/net/udp, %.0f in herenow_udp_kernel_drops_total (medians).",
                            rate[g], threads[g], worst_loss[g], m(g, "kdrops_proc"), m(g, "kdrops"))
    }
    if (sl != "") print "- Saturated rows with loss, i.e. kernel drops the collector did not count:" sl
}
