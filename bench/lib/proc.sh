# proc.sh: what bench/udp.sh and bench/cluster.sh share about the processes
# they start and measure (sourced; bash).

alive() { kill -0 "$1" 2>/dev/null && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; }

# SIGTERM, then wait for the process (our child) to exit; SIGKILL after 30 s.
stop_pid() {
    local pid=$1 deadline=$((SECONDS + 30))
    kill -TERM "$pid" 2>/dev/null || return 0
    while alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
        sleep 0.02
    done
    wait "$pid" 2>/dev/null || true
}

# utime + stime of a whole process (every thread), in clock ticks; and the
# two apart ("utime stime").
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
cpu_split() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'; }

# Kernel view of the UDP sockets on a port: "<drops summed> <sockets with
# bytes still queued>".
udp_sock_stats() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'FNR > 1 && substr($2, length($2) - 4) == p {
            split($5, q, ":"); if (q[2] !~ /^0+$/) rq++; d += $NF }
        END { printf "%d %d\n", d, rq }' /proc/net/udp /proc/net/udp6 2>/dev/null
}

# GET a path from the admin port without forking (bash's /dev/tcp): the
# poll runs every 20 ms and must not steal a core from what it measures.
http_get() {
    local port=$1 path=$2 fd line
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&"$fd"
    while IFS= read -r line <&"$fd" || [ -n "$line" ]; do printf '%s\n' "${line%$'\r'}"; done
    exec {fd}<&-
}

# wait_ready PORT PID: /readyz answers 200 (WAIT_READY_S, 30 s, at most).
wait_ready() {
    local port=$1 pid=$2 deadline=$((SECONDS + ${WAIT_READY_S:-30})) r
    while :; do
        r=$(http_get "$port" /readyz 2>/dev/null) || r=
        case $r in 'HTTP/1.'?' 200 '*) return 0 ;; esac
        alive "$pid" || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.02
    done
}

# key=value line → shell variables with a prefix: kv LG_ "a=1 b=2" sets LG_a LG_b.
kv() {
    local prefix=$1 pair
    for pair in $2; do
        case $pair in *=*) printf -v "$prefix${pair%%=*}" '%s' "${pair#*=}" ;; esac
    done
}
