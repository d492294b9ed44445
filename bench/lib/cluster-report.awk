# cluster-report.awk: bench/cluster.sh's rows (key=value, one run each) →
# medians per (threads, rate, mode) and the cluster / standalone ratios.
# -v mode=console|markdown
function median(list,    n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    if (n == 0) return 0
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function spread(list,    n, v, i, lo, hi) {
    n = split(list, v, " "); lo = hi = v[1]
    for (i = 2; i <= n; i++) { if (v[i] + 0 < lo + 0) lo = v[i]; if (v[i] + 0 > hi + 0) hi = v[i] }
    return sprintf("%.2f–%.2f", lo, hi)
}
# the medians, element by element, of "a/b/c" lists
function median_slash(list,    n, v, i, k, m, parts, col, out) {
    n = split(list, v, " ")
    m = split(v[1], parts, "/")
    out = ""
    for (k = 1; k <= m; k++) {
        col = ""
        for (i = 1; i <= n; i++) { split(v[i], parts, "/"); col = col " " parts[k] }
        out = out (k > 1 ? " / " : "") sprintf(fmt_slash, median(col))
    }
    return out
}
{
    delete f
    for (i = 1; i <= NF; i++) { eq = index($i, "="); if (eq) f[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
    k = f["threads"] SUBSEP f["rate"] SUBSEP f["mode"]
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    kr = f["threads"] SUBSEP f["rate"]
    if (!(kr in seenr)) { seenr[kr] = 1; rorder[++nr] = kr }
    off[k] = off[k] " " f["offered"]; e2e[k] = e2e[k] " " f["e2e"]; col[k] = col[k] " " f["col_us"]
    red[k] = red[k] " " f["redis_us"]; exe[k] = exe[k] " " f["exec_us"]; per[k] = per[k] " " f["master_us"]; rep[k] = rep[k] " " f["replica_us"]
    cmd[k] = cmd[k] " " f["cmds_b"]; dep[k] = dep[k] " " f["depth"]; bat[k] = bat[k] " " f["batch"]
    if (f["kdrops"] + 0 > 0 || f["accepted"] < 0.97 * f["sent"]) sat[k] = 1
    if (f["loss"] + 0 > maxloss[k] + 0) maxloss[k] = f["loss"]
    runs[k]++
}
END {
    if (mode == "markdown") {
        print "| threads | offered | mode | accepted b/s | collector µs/b | Redis µs/b | of it, commands µs/b | per master µs/b | replicas µs/b | cmds/b | cmds/master/tick | records/flush | loss | collector × | Redis × | Redis × replicated |"
        print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    } else {
        printf "%-3s %-6s %-10s %9s %7s %7s %6s %-22s %7s %6s %-18s %6s %5s %6s %6s %6s\n", "th", "rate", "mode", "e2e", "col", "redis", "exec",
            "per master", "repl", "cmds/b", "depth", "batch", "loss", "col×", "redis×", "r×repl"
    }
    for (r = 1; r <= nr; r++) {
        split(rorder[r], kk, SUBSEP)
        ks = rorder[r] SUBSEP "standalone"
        for (mi = 1; mi <= 3; mi++) {
            k = rorder[r] SUBSEP (mi == 1 ? "standalone" : mi == 2 ? "replicated" : "cluster"); kc = k
            if (!(k in seen)) continue
            split(k, kp, SUBSEP)
            cs = median(col[ks]); rs = median(red[ks])
            cx = (mi > 1 && cs > 0) ? sprintf("%.2f", median(col[kc]) / cs) : ""
            rx = (mi > 1 && rs > 0) ? sprintf("%.2f", median(red[kc]) / rs) : ""
            kq = rorder[r] SUBSEP "replicated"; rq = (kq in seen) ? median(red[kq]) : 0
            rr = (mi == 3 && rq > 0) ? sprintf("%.2f", median(red[kc]) / rq) : ""
            fmt_slash = "%.2f"; pm = median_slash(per[k])
            fmt_slash = "%.1f"; dp = median_slash(dep[k])
            rate = kp[2] == "max" ? "max" : kp[2]
            e = sprintf("%.0f%s", median(e2e[k]), sat[k] ? " (sat.)" : "")
            if (mode == "markdown")
                printf "| %s | %s | %s | %s | %.2f | %.2f | %.2f | %s | %s | %.2f | %s | %.0f | %d | %s | %s | %s |\n", kp[1], rate, kp[3], e,
                    median(col[k]), median(red[k]), median(exe[k]), (mi == 3 ? pm : ""), (mi == 1 ? "" : sprintf("%.2f", median(rep[k]))),
                    median(cmd[k]), dp, median(bat[k]), maxloss[k], cx, rx, rr
            else
                printf "%-3s %-6s %-10s %9s %7.2f %7.2f %6.2f %-22s %7.2f %6.2f %-18s %6.0f %5d %6s %6s %6s\n", kp[1], rate, kp[3], e,
                    median(col[k]), median(red[k]), median(exe[k]), pm, median(rep[k]), median(cmd[k]), dp, median(bat[k]), maxloss[k], cx, rx, rr
        }
    }
    if (mode == "markdown") {
        print ""
        print "Spread (min–max over the runs) of the per-beacon CPU: "
        print ""
        print "| threads | offered | mode | collector µs/b | Redis µs/b |"
        print "|---|---|---|---|---|"
        for (i = 1; i <= nk; i++) {
            split(order[i], kp, SUBSEP)
            printf "| %s | %s | %s | %s | %s |\n", kp[1], kp[2], kp[3], spread(col[order[i]]), spread(red[order[i]])
        }
    }
}
