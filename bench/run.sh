#!/usr/bin/env bash
# bench/run.sh: mtlsproxy against nginx, side by side, on this machine.
#
# usage: bench/run.sh path/to/mtlsproxy        (`make bench` runs it)
#
# Builds a P-256 PKI (bench/make-pki.sh), starts one plaintext backend (an
# nginx of its own on 127.0.0.1) and four mTLS front ends in front of it:
#   nginx-http    nginx http proxy, ssl_verify_client on, keepalive upstream,
#                 the identity passed to the backend (proxy_set_header)
#   nginx-stream  nginx stream proxy, ssl_verify_client on
#   mtls-http     mtlsproxy, backend.mode: http, the same identity headers
#   mtls-tcp      mtlsproxy, backend.mode: tcp
# checks that each one refuses a client without a certificate (and one from
# another CA) and passes an allowed one through, then measures each with the
# same clients, one system after the other:
#   new mTLS connections/s   ab -E client.pem -n 2000 -c 16        (no keep-alive)
#   keep-alive requests/s    ab -k -E client.pem -n 50000 -c 32
#   bulk MB/s                ab -k -E client.pem -n 1000 -c 8 /1m.bin
#   new and resumed conns/s  openssl s_time -new / -reuse -time 5 -www /
#   proxy CPU per connection, request, MiB   (/proc/PID/stat of the proxy)
#   peak RSS                 (VmHWM, summed over the proxy's processes)
#   KiB per idle connection  (bench/idle.js holds 1000 handshaken connections,
#                            each run against a freshly started proxy)
#   who was busy during each ab run: ab's own CPU (bash's time), the proxy's
#                            and the backend's (/proc), idle (/proc/stat)
# Each measurement is repeated BENCH_RUNS times (rounds interleave the
# systems, so a burst of load elsewhere hits all of them) and the median is
# reported. bench/report.py prints the table and writes it into
# docs/performance.md between <!-- bench:begin --> and <!-- bench:end -->.
#
# Environment:
#   BENCH_RUNS=3            repetitions of every measurement (quick mode: 1)
#   BENCH_QUICK=1           small -n, s_time 1 s, 200 idle connections, and
#                           docs/performance.md is left alone
#   BENCH_DOCS=0|1          write docs/performance.md (default: 1, quick: 0)
#   BENCH_PORT=24740        backend port; the front ends use the next four
#   BENCH_SYSTEMS="nginx-http nginx-stream mtls-http mtls-tcp"   a subset
#   BENCH_IDLE_CONNS=1000   idle connections held for the memory figure
#   BENCH_BACKEND_WORKERS=1 worker_processes of the backend nginx
#
# Everything listens on 127.0.0.1 only. Every process started here is
# recorded by PID and stopped by PID (SIGTERM, then SIGKILL) when the script
# ends, however it ends. The nginx instances run with their own prefix,
# configuration, pid file and logs under bench/out, in the foreground
# (`daemon off;`), so the system's nginx is never touched.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 path/to/mtlsproxy" >&2
	exit 2
fi
ROOT=$(cd -- "$(dirname -- "$0")/.." && pwd)
BIN=$1
case $BIN in /*) ;; *) BIN=$PWD/$BIN ;; esac
[ -x "$BIN" ] || { echo "bench: $BIN is not an executable; run make first" >&2; exit 1; }
cd -- "$ROOT"

"$ROOT/bench/deps.sh"

QUICK=${BENCH_QUICK:-0}
[ "$QUICK" = 0 ] || QUICK=1
if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-1}
	HS_N=300 KA_N=5000 BULK_N=100 STIME=1
	IDLE_N=${BENCH_IDLE_CONNS:-200}
	SCALE_N=${BENCH_SCALE_CONNS:-1000}
	DOCS=${BENCH_DOCS:-0}
else
	RUNS=${BENCH_RUNS:-3}
	HS_N=2000 KA_N=50000 BULK_N=1000 STIME=5
	IDLE_N=${BENCH_IDLE_CONNS:-1000}
	SCALE_N=${BENCH_SCALE_CONNS:-10000}
	DOCS=${BENCH_DOCS:-1}
fi
HS_C=16 KA_C=32 BULK_C=8
PORT0=${BENCH_PORT:-24740}
SYSTEMS=${BENCH_SYSTEMS:-nginx-http nginx-stream mtls-http mtls-tcp}
BACKEND_WORKERS=${BENCH_BACKEND_WORKERS:-1}
for v in RUNS IDLE_N SCALE_N PORT0 BACKEND_WORKERS; do
	case ${!v} in
	0) [ "$v" = SCALE_N ] && continue ;&
	'' | *[!0-9]* | 0) echo "bench: $v must be a positive number, got \"${!v}\"" >&2; exit 2 ;;
	esac
done

OUT=$ROOT/bench/out
PKI=$OUT/pki
LOGS=$OUT/logs
RESULTS=$OUT/results.tsv
META=$OUT/meta.env
BULK_SIZE=1048576
CLK_TCK=$(getconf CLK_TCK)
TIMEFORMAT='%3U %3S'	# for `time ab ...`: user and system seconds
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so

# ------------------------------------------------------------- processes

declare -A PROCS=()	# pid -> name, for every process still running
declare -A MASTER=()	# system -> the PID its CPU and memory are read from

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf '\nbench: ABORTED: %s\n' "$*" >&2
	exit 1
}

# stop_pid PID: SIGTERM, up to 5 s, SIGKILL; reap it; forget it.
stop_pid() {
	local pid=$1
	[ -n "${PROCS[$pid]+x}" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			# a zombie child counts as alive for kill -0: check the state
			[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "PROCS[$pid]"
}

cleanup() {
	local pid
	trap - EXIT INT TERM
	# idle clients first, then the front ends, the backend last
	for pid in "${!PROCS[@]}"; do
		case ${PROCS[$pid]} in idle-*) stop_pid "$pid" ;; esac
	done
	for pid in "${!PROCS[@]}"; do
		[ "${PROCS[$pid]}" = backend ] || stop_pid "$pid"
	done
	for pid in "${!PROCS[@]}"; do
		stop_pid "$pid"
	done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start NAME PORT LOG CMD...: run CMD in the background, record its PID,
# wait (max 10 s) until PORT accepts.
start() {
	local name=$1 port=$2 log=$3 pid
	shift 3
	"$@" >"$log" 2>&1 &
	pid=$!
	PROCS[$pid]=$name
	MASTER[$name]=$pid
	for _ in $(seq 100); do
		port_open "$port" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$log" >&2 || true
	die "$name did not start on 127.0.0.1:$port (log: $log)"
}

# pids_of SYSTEM: the proxy's processes (nginx: master and workers;
# mtlsproxy: its one process, whose /proc counters cover all its threads).
pids_of() {
	local m=${MASTER[$1]}
	echo "$m"
	pgrep -P "$m" 2>/dev/null || true
}

# cpu_ticks SYSTEM: utime+stime of all its processes, in clock ticks.
cpu_ticks() {
	local t=0 p s f
	for p in $(pids_of "$1"); do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		read -r -a f <<<"${s##*) }"
		t=$((t + f[11] + f[12]))
	done
	echo "$t"
}

# idle_ticks: the machine's idle + iowait time and the time its hypervisor
# gave to other guests (steal), all cores, in clock ticks: "IDLE STEAL".
idle_ticks() {
	awk '$1 == "cpu" { print $5 + $6, $9 + 0; exit }' /proc/stat
}

# mem_kib SYSTEM FIELD: FIELD (VmRSS, VmHWM) from /proc/PID/status, summed.
mem_kib() {
	local t=0 p v
	for p in $(pids_of "$1"); do
		v=$(awk -v k="$2:" '$1 == k {print $2}' "/proc/$p/status" 2>/dev/null) || continue
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# ------------------------------------------------------------- systems

port_of() {
	case $1 in
	backend) echo "$PORT0" ;;
	nginx-http) echo $((PORT0 + 1)) ;;
	nginx-stream) echo $((PORT0 + 2)) ;;
	mtls-http) echo $((PORT0 + 3)) ;;
	mtls-tcp) echo $((PORT0 + 4)) ;;
	*) die "unknown system \"$1\" in BENCH_SYSTEMS (use nginx-http nginx-stream mtls-http mtls-tcp)" ;;
	esac
}

# Lines every nginx configuration starts with: foreground, own pid file and
# error log, enough descriptors for the idle-connection test.
nginx_head() {
	local dir=$1 workers=$2
	echo "daemon off;"
	echo "worker_processes $workers;"
	echo "pid $dir/nginx.pid;"
	echo "error_log $dir/error.log warn;"
	# As root, nginx would switch its workers to "nobody"; keep root so they
	# can read bench/out. Meaningless (and skipped) when not root.
	[ "$(id -u)" -ne 0 ] || echo "user root;"
	echo "worker_rlimit_nofile 65536;"
	echo "events { worker_connections 16384; }"
}

# Temporary paths inside the prefix, not Debian's /var/lib/nginx.
nginx_temp_paths() {
	local t=$1/tmp
	echo "  client_body_temp_path $t/body;"
	echo "  proxy_temp_path $t/proxy;"
	echo "  fastcgi_temp_path $t/fastcgi;"
	echo "  uwsgi_temp_path $t/uwsgi;"
	echo "  scgi_temp_path $t/scgi;"
}

# The mTLS part, the same for the http and the stream front end.
nginx_tls() {
	echo "    ssl_certificate $PKI/server.crt;"
	echo "    ssl_certificate_key $PKI/server.key;"
	echo "    ssl_protocols TLSv1.3;"
	echo "    ssl_client_certificate $PKI/ca.crt;"
	echo "    ssl_verify_client on;"
	echo "    ssl_session_cache shared:SSL_$1:10m;"
	echo "    ssl_session_tickets on;"
}

write_backend_conf() {
	local dir=$OUT/backend
	mkdir -p "$dir/tmp" "$dir/html"
	if [ "$(stat -c %s "$dir/html/1m.bin" 2>/dev/null || echo 0)" != "$BULK_SIZE" ]; then
		head -c "$BULK_SIZE" /dev/urandom >"$dir/html/1m.bin"
	fi
	{
		nginx_head "$dir" "$BACKEND_WORKERS"
		echo "http {"
		echo "  access_log off;"
		echo "  keepalive_timeout 300s;"
		echo "  keepalive_requests 1000000;"
		echo "  sendfile on;"
		nginx_temp_paths "$dir"
		echo "  server {"
		echo "    listen 127.0.0.1:$(port_of backend);"
		echo "    root $dir/html;"
		printf '%s\n' '    location = / { default_type text/plain; return 200 "ok\n"; }'
		echo "    location = /1m.bin { default_type application/octet-stream; }"
		# Echoes the identity a front end passed (the bench checks it).
		printf '%s\n' '    location = /id { default_type text/plain; return 200 "$http_x_ssl_client_verify $http_x_ssl_client_s_dn\n"; }'
		echo "  }"
		echo "}"
	} >"$dir/nginx.conf"
}

write_nginx_http_conf() {
	local dir=$OUT/nginx-http
	mkdir -p "$dir/tmp"
	{
		nginx_head "$dir" 2
		echo "http {"
		echo "  access_log off;"
		echo "  keepalive_timeout 300s;"
		echo "  keepalive_requests 1000000;"
		nginx_temp_paths "$dir"
		echo "  upstream backend {"
		echo "    server 127.0.0.1:$(port_of backend);"
		echo "    keepalive 32;"
		echo "    keepalive_requests 1000000;"
		echo "  }"
		echo "  server {"
		echo "    listen 127.0.0.1:$(port_of nginx-http) ssl;"
		nginx_tls http
		echo "    location / {"
		echo "      proxy_pass http://backend;"
		echo "      proxy_http_version 1.1;"
		echo "      proxy_set_header Connection \"\";"
		# The client's identity, as nginx users pass it to the
		# application (mtlsproxy's "nginx" header preset sends the same
		# headers with the same values), and the X-Forwarded-* headers
		# mtlsproxy sends too: both front ends do the same work and the
		# backend gets the same requests.
		echo "      proxy_set_header X-SSL-Client-Verify \$ssl_client_verify;"
		echo "      proxy_set_header X-SSL-Client-S-DN \$ssl_client_s_dn;"
		echo "      proxy_set_header X-SSL-Client-I-DN \$ssl_client_i_dn;"
		echo "      proxy_set_header X-SSL-Client-Serial \$ssl_client_serial;"
		echo "      proxy_set_header X-SSL-Client-Fingerprint \$ssl_client_fingerprint;"
		echo "      proxy_set_header X-SSL-Client-Cert \$ssl_client_escaped_cert;"
		echo "      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;"
		echo "      proxy_set_header X-Forwarded-Proto \$scheme;"
		echo "      proxy_set_header X-Forwarded-Host \$http_host;"
		echo "    }"
		echo "  }"
		echo "}"
	} >"$dir/nginx.conf"
}

write_nginx_stream_conf() {
	local dir=$OUT/nginx-stream
	mkdir -p "$dir/tmp"
	{
		# Debian builds the stream module as a dynamic module
		# (package libnginx-mod-stream).
		[ ! -f "$STREAM_MODULE" ] || echo "load_module $STREAM_MODULE;"
		nginx_head "$dir" 2
		echo "stream {"
		echo "  upstream backend { server 127.0.0.1:$(port_of backend); }"
		echo "  server {"
		echo "    listen 127.0.0.1:$(port_of nginx-stream) ssl;"
		nginx_tls stream
		echo "    proxy_pass backend;"
		echo "  }"
		echo "}"
	} >"$dir/nginx.conf"
}

write_mtls_conf() {
	local sys=$1 mode=${1#mtls-} dir=$OUT/$1 ka=
	mkdir -p "$dir"
	# http: idle backend connections kept, as nginx's "keepalive 32", and
	# the identity headers nginx users set by hand (the nginx front end
	# sets the same ones).
	[ "$mode" = http ] && ka="
      keepalive: 32
    headers:
      preset: nginx"
	cat >"$dir/mtlsproxy.yaml" <<YAML
# Written by bench/run.sh. Access logs are off here as in the nginx
# configurations; backend keep-alive and the identity headers in http mode
# as in the nginx http proxy's; everything else is the default.
workers: auto
drain_timeout: 1s
log:
  level: warn
  access: false
listeners:
  - name: bench-$mode
    listen: "127.0.0.1:$(port_of "$sys")"
    tls:
      cert: $PKI/server.crt
      key: $PKI/server.key
      min_version: TLSv1.3
    client_auth:
      ca: $PKI/ca.crt
    backend:
      address: "127.0.0.1:$(port_of backend)"
      mode: $mode$ka
    max_connections: 20000
YAML
}

start_system() {
	local sys=$1 dir=$OUT/$1 port
	port=$(port_of "$sys")
	case $sys in
	backend | nginx-*)
		"$NGINX" -t -q -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" ||
		    die "nginx rejected $dir/nginx.conf"
		start "$sys" "$port" "$dir/stderr.log" \
		    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log"
		;;
	mtls-*)
		"$BIN" -t -c "$dir/mtlsproxy.yaml" >"$dir/check.log" 2>&1 ||
		    { cat "$dir/check.log" >&2; die "mtlsproxy rejected $dir/mtlsproxy.yaml"; }
		start "$sys" "$port" "$dir/mtlsproxy.log" "$BIN" -c "$dir/mtlsproxy.yaml"
		;;
	esac
}

# ------------------------------------------------------------- checks

# verify_system SYSTEM: it must refuse a client without a certificate and a
# client from another CA, and pass the bench client through to the backend.
verify_system() {
	local sys=$1 port url body rc
	port=$(port_of "$sys")
	url=https://127.0.0.1:$port
	for who in none stranger; do
		local cert=()
		[ "$who" = none ] || cert=(--cert "$PKI/stranger.pem")
		if body=$(curl -sS -f --max-time 10 --cacert "$PKI/ca.crt" ${cert[@]+"${cert[@]}"} \
		    "$url/" 2>"$LOGS/$sys-refuse-$who.err"); then
			rc=0
		else
			rc=$?
		fi
		if [ "$rc" = 0 ] || [ -n "$body" ]; then
			die "$sys ($url) ANSWERED a client with $( [ "$who" = none ] && echo "no certificate" || echo "a certificate from another CA"): curl exit $rc, body \"$body\". It does not enforce mTLS, so it is not benchmarked. Config: $OUT/$sys"
		fi
		say "$sys refuses a client with $( [ "$who" = none ] && echo "no certificate" || echo "a certificate from another CA"): $(tr '\n' ' ' <"$LOGS/$sys-refuse-$who.err" | cut -c1-110)"
	done
	body=$(curl -sS --max-time 10 --cacert "$PKI/ca.crt" --cert "$PKI/client.pem" "$url/" 2>&1) ||
	    die "$sys does not pass an allowed client through: $body"
	[ "$body" = ok ] || die "$sys answered \"$body\" to GET / instead of the backend's \"ok\""
	# The http front ends must hand the client's identity to the backend
	# (the same work for both); the stream and tcp ones pass bytes only.
	case $sys in
	*-http)
		body=$(curl -sS --max-time 10 --cacert "$PKI/ca.crt" --cert "$PKI/client.pem" "$url/id" 2>&1) ||
		    die "$sys: GET /id failed: $body"
		case $body in
		"SUCCESS CN=bench-client"*) ;;
		*) die "$sys did not pass the client's identity to the backend: it saw \"$body\"" ;;
		esac
		say "$sys passes the identity: $body"
		;;
	esac
	body=$(curl -sS --max-time 30 --cacert "$PKI/ca.crt" --cert "$PKI/client.pem" "$url/1m.bin" | sha256sum | cut -d' ' -f1)
	[ "$body" = "$BULK_SHA" ] || die "$sys: /1m.bin arrived damaged (sha256 $body, expected $BULK_SHA)"
}

# ------------------------------------------------------------- measurements

rec() { # SYSTEM METRIC RUN STATUS VALUE
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}
calc() { awk "BEGIN { printf \"%.6g\", $* }"; }
field() { # LOG LABEL: the number after "LABEL:" in an ab report
	awk -v k="$2:" 'index($0, k) == 1 { sub(/^[^:]*:[ \t]*/, ""); print $1; exit }' "$1"
}

# ab_run SYSTEM KIND RUN: one ab measurement; KIND hs | ka | bulk.
ab_run() {
	local sys=$1 kind=$2 run=$3 port n c path doclen args=() log c0 c1 rc
	port=$(port_of "$sys")
	case $kind in
	hs) n=$HS_N c=$HS_C path=/ doclen=3 ;;
	ka) n=$KA_N c=$KA_C path=/ doclen=3 args=(-k) ;;
	bulk) n=$BULK_N c=$BULK_C path=/1m.bin doclen=$BULK_SIZE args=(-k) ;;
	esac
	log=$LOGS/$sys-$kind-$run.txt
	local b0 b1 i0 i1 t0 t1 abcpu
	b0=$(cpu_ticks backend)
	i0=$(idle_ticks)
	t0=$(date +%s.%N)
	c0=$(cpu_ticks "$sys")
	# bash's time keyword: ab's own user + system seconds (TIMEFORMAT)
	if { time timeout 600 ab "${args[@]}" -E "$PKI/client.pem" -n "$n" -c "$c" \
	    "https://127.0.0.1:$port$path" >"$log" 2>&1; } 2>"$log.cpu"; then rc=0; else rc=$?; fi
	c1=$(cpu_ticks "$sys")
	t1=$(date +%s.%N)
	i1=$(idle_ticks)
	b1=$(cpu_ticks backend)
	abcpu=$(awk 'NF == 2 { print $1 + $2 }' "$log.cpu" | tail -n 1)
	local complete failed html total rate taken kept why=
	complete=$(field "$log" "Complete requests")
	failed=$(field "$log" "Failed requests")
	html=$(field "$log" "HTML transferred")
	total=$(field "$log" "Total transferred")
	rate=$(field "$log" "Requests per second")
	taken=$(field "$log" "Time taken for tests")
	kept=$(field "$log" "Keep-Alive requests")
	if [ "$rc" != 0 ]; then why="ab exit $rc: $(grep -v '^Completed\|^Finished\|^Benchmarking\|^This is\|^Copyright\|^Licensed' "$log" | grep . | tail -n 1)"
	elif [ "${complete:-0}" != "$n" ]; then why="$complete of $n requests complete"
	elif [ "${failed:-1}" != 0 ]; then why="Failed requests: $failed ($(grep -A1 '^Failed requests' "$log" | tail -n 1 | tr -s ' '))"
	elif grep -q '^Non-2xx responses' "$log"; then why="$(grep '^Non-2xx responses' "$log" | tr -s ' ')"
	elif [ "${html:-0}" -le 0 ]; then why="HTML transferred: ${html:-none} (empty replies)"
	elif [ "$html" != $((n * doclen)) ]; then why="HTML transferred: $html bytes, expected $((n * doclen))"
	fi
	if [ -n "$why" ]; then
		say "$sys $kind run $run FAILED: $why (log: $log)"
		case $kind in
		hs) rec "$sys" hs_rate "$run" FAILED 0; rec "$sys" hs_cpu "$run" FAILED 0 ;;
		ka) rec "$sys" ka_rate "$run" FAILED 0; rec "$sys" ka_cpu "$run" FAILED 0 ;;
		bulk) rec "$sys" bulk_mbs "$run" FAILED 0; rec "$sys" bulk_cpu "$run" FAILED 0 ;;
		esac
		return 0
	fi
	local cpu_s wall
	cpu_s=$(calc "($c1 - $c0) / $CLK_TCK")
	# who was busy, in percent of one core (n cores make n * 100):
	# ab (single-threaded, so 100 means the client was the limit), the
	# proxy, the backend, what the machine left idle, and what the
	# hypervisor took for other guests (steal)
	local bab bpx bbe bid bst
	wall=$(calc "$t1 - $t0")
	bab=$(calc "${abcpu:-0} * 100 / $wall")
	bpx=$(calc "$cpu_s * 100 / $wall")
	bbe=$(calc "($b1 - $b0) * 100 / $CLK_TCK / $wall")
	bid=$(calc "(${i1% *} - ${i0% *}) * 100 / $CLK_TCK / $wall")
	bst=$(calc "(${i1#* } - ${i0#* }) * 100 / $CLK_TCK / $wall")
	rec "$sys" "${kind}_busy_ab" "$run" ok "$bab"
	rec "$sys" "${kind}_busy_proxy" "$run" ok "$bpx"
	rec "$sys" "${kind}_busy_backend" "$run" ok "$bbe"
	rec "$sys" "${kind}_busy_idle" "$run" ok "$bid"
	rec "$sys" "${kind}_busy_steal" "$run" ok "$bst"
	case $kind in
	hs)
		rec "$sys" hs_rate "$run" ok "$rate"
		rec "$sys" hs_cpu "$run" ok "$(calc "$cpu_s * 1000 / $n")"	# ms per connection
		say "$(printf '%-12s run %s  new conns/s %8.0f   CPU/conn %6.3f ms' "$sys" "$run" "$rate" "$(calc "$cpu_s * 1000 / $n")")"
		;;
	ka)
		rec "$sys" ka_rate "$run" ok "$rate"
		rec "$sys" ka_cpu "$run" ok "$(calc "$cpu_s * 1000000 / $n")"	# µs per request
		rec "$sys" ka_kept "$run" ok "$(calc "${kept:-0} / $n")"
		say "$(printf '%-12s run %s  keep-alive req/s %8.0f   CPU/req %6.1f us  (kept alive: %s of %s)' "$sys" "$run" "$rate" "$(calc "$cpu_s * 1000000 / $n")" "${kept:-0}" "$n")"
		;;
	bulk)
		local mbs mib
		mbs=$(calc "$total / $taken / 1000000")
		mib=$(calc "$html / 1048576")
		rec "$sys" bulk_mbs "$run" ok "$mbs"
		rec "$sys" bulk_cpu "$run" ok "$(calc "$cpu_s * 1000 / $mib")"	# ms per MiB
		say "$(printf '%-12s run %s  bulk MB/s %8.0f   CPU/MiB %6.3f ms' "$sys" "$run" "$mbs" "$(calc "$cpu_s * 1000 / $mib")")"
		;;
	esac
	say "$(printf '%-12s         busy (%% of one core): ab %3.0f  proxy %3.0f  backend %3.0f  idle %3.0f  steal %3.0f' "$sys" "$bab" "$bpx" "$bbe" "$bid" "$bst")"
	if [ -z "$(meta_get "TLS_$sys")" ]; then
		meta "TLS_$sys" "$(field "$log" "SSL/TLS Protocol"), $(grep '^Server Temp Key' "$log" | sed 's/^[^:]*:[ \t]*//')"
	fi
}

# stime_run SYSTEM MODE RUN: openssl s_time, MODE new | reuse, for STIME
# seconds, one connection after the other, each fetching / (so that the TLS
# 1.3 session ticket is read and -reuse can resume). Rate = connections /
# wall time measured here (s_time prints whole seconds only).
stime_run() {
	local sys=$1 mode=$2 run=$3 port log c0 c1 t0 t1 rc conns reused why=
	port=$(port_of "$sys")
	log=$LOGS/$sys-stime-$mode-$run.txt
	c0=$(cpu_ticks "$sys")
	t0=$(date +%s.%N)
	if timeout $((STIME + 60)) openssl s_time -connect "127.0.0.1:$port" \
	    -cert "$PKI/client.crt" -key "$PKI/client.key" -CAfile "$PKI/ca.crt" \
	    -time "$STIME" "-$mode" -www / >"$log" 2>&1; then rc=0; else rc=$?; fi
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "$sys")
	conns=$(awk '/connections in .* real seconds/ { print $1; exit }' "$log")
	# s_time prints one character per connection: r resumed, * full
	reused=$(grep -E '^[r*]+$' "$log" | tr -cd 'r' | wc -c)
	if [ "$rc" != 0 ] || [ -z "$conns" ] || [ "$conns" -le 0 ]; then
		why="s_time exit $rc, connections: ${conns:-none}: $(grep -i 'error\|fail' "$log" | head -n 1)"
	elif [ "$mode" = reuse ] && [ "$reused" -lt $((conns * 9 / 10)) ]; then
		# the first connection of -reuse is a full one; allow a few more
		why="sessions not resumed: $reused of $conns connections resumed"
	fi
	local m=stime_new
	[ "$mode" = new ] || m=stime_reuse
	if [ -n "$why" ]; then
		say "$sys s_time -$mode run $run FAILED: $why (log: $log)"
		rec "$sys" "${m}_rate" "$run" FAILED 0
		rec "$sys" "${m}_cpu" "$run" FAILED 0
		return 0
	fi
	rec "$sys" "${m}_rate" "$run" ok "$(calc "$conns / ($t1 - $t0)")"
	rec "$sys" "${m}_cpu" "$run" ok "$(calc "($c1 - $c0) * 1000 / $CLK_TCK / $conns")"	# ms per conn
	say "$(printf '%-12s run %s  s_time -%-5s conns/s %7.0f   CPU/conn %6.3f ms' "$sys" "$run" "$mode" "$(calc "$conns / ($t1 - $t0)")" "$(calc "($c1 - $c0) * 1000 / $CLK_TCK / $conns")")"
}

# idle_hold SYSTEM N LOG TENTHS: bench/idle.js holds N handshaken idle
# connections to SYSTEM; wait (at most TENTHS tenths of a second) until it
# says ready or fails. Sets IDLE_PID.
idle_hold() {
	local sys=$1 n=$2 log=$3 tenths=$4
	node "$ROOT/bench/idle.js" "$(port_of "$sys")" "$n" "$PKI" >"$log" 2>&1 &
	IDLE_PID=$!
	PROCS[$IDLE_PID]=idle-$sys
	for _ in $(seq "$tenths"); do
		grep -q '^ready\|^error' "$log" && break
		kill -0 "$IDLE_PID" 2>/dev/null || break
		sleep 0.1
	done
}

# idle_release N LOG: stop the idle client; print why holding N failed, if
# it did (not ready, or connections the proxy dropped meanwhile).
idle_release() {
	local n=$1 log=$2 alive
	stop_pid "$IDLE_PID"
	alive=$(awk '/^alive/ { print $2 }' "$log")
	if ! grep -q '^ready' "$log"; then
		echo "the idle client did not get $n connections up: $(grep . "$log" | tail -n 1)"
	elif [ "${alive:-0}" != "$n" ]; then
		echo "only ${alive:-0} of $n idle connections were still open at the end"
	fi
}

# idle_run SYSTEM RUN: RSS growth with IDLE_N handshaken idle connections.
# Each run restarts the proxy first: memory a process has freed stays in its
# RSS and is reused by the next connections, so a second run in the same
# process would measure nearly nothing. A few handshakes and keep-alive
# requests first, so that one-time initialisation is not counted.
idle_run() {
	local sys=$1 run=$2 port log before after why
	port=$(port_of "$sys")
	log=$LOGS/$sys-idle-$run.txt
	stop_pid "${MASTER[$sys]}"
	start_system "$sys"
	ab -E "$PKI/client.pem" -n 100 -c "$HS_C" "https://127.0.0.1:$port/" >"$log.warmup" 2>&1 || true
	ab -k -E "$PKI/client.pem" -n 1000 -c "$KA_C" "https://127.0.0.1:$port/" >>"$log.warmup" 2>&1 || true
	sleep 0.5
	before=$(mem_kib "$sys" VmRSS)
	idle_hold "$sys" "$IDLE_N" "$log" 1500
	if grep -q '^ready' "$log"; then
		sleep 1	# let the proxy finish any work the last handshakes left
		after=$(mem_kib "$sys" VmRSS)
	fi
	why=$(idle_release "$IDLE_N" "$log")
	if [ -n "$why" ]; then
		say "$sys idle run $run FAILED: $why (log: $log)"
		rec "$sys" idle_kib "$run" FAILED 0
		return 0
	fi
	rec "$sys" idle_kib "$run" ok "$(calc "($after - $before) / $IDLE_N")"
	say "$(printf '%-12s run %s  idle: RSS %d -> %d KiB with %d connections: %.1f KiB each' "$sys" "$run" "$before" "$after" "$IDLE_N" "$(calc "($after - $before) / $IDLE_N")")"
}

# lat_ms LOG PCT: the "PCT%" line of ab's percentile table, in ms.
lat_ms() { awk -v p="$2%" '$1 == p { print $2; exit }' "$1"; }

# scale_run SYSTEM: SCALE_N handshaken idle mTLS connections held at once;
# the RSS with them, and the latency of new requests (ab -n 300 -c 1, a
# full mTLS handshake each) made while they are held, next to the same
# measured just before. Only the http front ends: an idle client there
# holds no backend connection, so 10,000 of them fit in the descriptor
# limit (a tcp front end needs two descriptors per client).
scale_run() {
	local sys=$1 port log before after why t0 t1
	port=$(port_of "$sys")
	log=$LOGS/$sys-scale.txt
	stop_pid "${MASTER[$sys]}"
	start_system "$sys"
	ab -E "$PKI/client.pem" -n 100 -c "$HS_C" "https://127.0.0.1:$port/" >"$log.warmup" 2>&1 || true
	ab -E "$PKI/client.pem" -n 300 -c 1 "https://127.0.0.1:$port/" >"$log.before" 2>&1 || true
	before=$(mem_kib "$sys" VmRSS)
	t0=$(date +%s.%N)
	idle_hold "$sys" "$SCALE_N" "$log" 6000
	t1=$(date +%s.%N)
	if grep -q '^ready' "$log"; then
		sleep 1
		after=$(mem_kib "$sys" VmRSS)
		ab -E "$PKI/client.pem" -n 300 -c 1 "https://127.0.0.1:$port/" >"$log.held" 2>&1 || true
	fi
	why=$(idle_release "$SCALE_N" "$log")
	if [ -z "$why" ] && { [ "$(field "$log.held" "Complete requests")" != 300 ] ||
	    [ "$(field "$log.held" "Failed requests")" != 0 ]; }; then
		why="requests made while the connections were held failed (log: $log.held)"
	fi
	if [ -n "$why" ]; then
		say "$sys scale run FAILED: $why (log: $log)"
		rec "$sys" scale_kib 1 FAILED 0
		return 0
	fi
	rec "$sys" scale_rss 1 ok "$after"
	rec "$sys" scale_kib 1 ok "$(calc "($after - $before) / $SCALE_N")"
	rec "$sys" scale_setup 1 ok "$(calc "$SCALE_N / ($t1 - $t0)")"
	rec "$sys" scale_lat50_before 1 ok "$(lat_ms "$log.before" 50)"
	rec "$sys" scale_lat99_before 1 ok "$(lat_ms "$log.before" 99)"
	rec "$sys" scale_lat50_held 1 ok "$(lat_ms "$log.held" 50)"
	rec "$sys" scale_lat99_held 1 ok "$(lat_ms "$log.held" 99)"
	say "$(printf '%-12s scale: %d idle connections, RSS %d -> %d KiB; new request latency p50/p99 %s/%s ms before, %s/%s ms while held' \
	    "$sys" "$SCALE_N" "$before" "$after" "$(lat_ms "$log.before" 50)" "$(lat_ms "$log.before" 99)" \
	    "$(lat_ms "$log.held" 50)" "$(lat_ms "$log.held" 99)")"
}

meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }
meta_get() { awk -v k="$1=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }' "$META"; }

# ------------------------------------------------------------- main

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
if [ "$fds" != unlimited ] && [ "$fds" -lt $((IDLE_N * 2 + 200)) ]; then
	die "the open-file limit is $fds; $IDLE_N idle connections need about $((IDLE_N * 2 + 200)) (raise ulimit -n or lower BENCH_IDLE_CONNS)"
fi
if [ "$fds" != unlimited ] && [ "$fds" -lt $((SCALE_N + 300)) ]; then
	die "the open-file limit is $fds; the scale test's $SCALE_N connections need about $((SCALE_N + 300)) (raise ulimit -n, or set BENCH_SCALE_CONNS lower, or 0 to skip it)"
fi
for sys in $SYSTEMS; do port_of "$sys" >/dev/null; done
for sys in backend $SYSTEMS; do
	p=$(port_of "$sys")
	if port_open "$p"; then
		die "127.0.0.1:$p (for $sys) is already in use; stop what listens there or choose other ports with BENCH_PORT=N (uses N..N+4)"
	fi
done
case " $SYSTEMS " in *" nginx-stream "*)
	[ -f "$STREAM_MODULE" ] || "$NGINX" -V 2>&1 | grep -q -- '--with-stream ' ||
	    die "nginx has no stream module: install libnginx-mod-stream (bench/deps.sh does)" ;;
esac

mkdir -p "$OUT" "$LOGS"
rm -f "$LOGS"/*.txt "$LOGS"/*.err "$LOGS"/*.warmup "$RESULTS" "$META"
: >"$RESULTS"
: >"$META"
"$ROOT/bench/make-pki.sh" "$PKI"

meta DATE "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta NPROC "$(nproc)"
meta CPU "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
meta KERNEL "$(uname -sr)"
meta MEM "$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
meta NGINX "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //; s|^nginx/|nginx |')"
meta OPENSSL "$(openssl version)"
meta MTLSPROXY "$("$BIN" -V 2>&1 | head -n 1)$(git -C "$ROOT" describe --always --dirty 2>/dev/null | sed 's/^/ (git /; s/$/)/')"
meta AB "$(ab -V 2>&1 | head -n 1 | sed 's/^This is //; s/, Version / /; s/ <.*//')"
meta NODE "node $(node --version)"
meta LOAD_START "$(cut -d' ' -f1-3 /proc/loadavg)"
meta RUNS "$RUNS"
meta QUICK "$QUICK"
meta HS "-n $HS_N -c $HS_C"
meta KA "-k -n $KA_N -c $KA_C"
meta BULK "-k -n $BULK_N -c $BULK_C"
meta STIME "$STIME"
meta IDLE_N "$IDLE_N"
meta SCALE_N "$SCALE_N"
meta BACKEND_WORKERS "$BACKEND_WORKERS"
meta SYSTEMS "$SYSTEMS"

say "machine: $(meta_get NPROC) cores, $(meta_get CPU), $(meta_get KERNEL), load $(meta_get LOAD_START)"
say "runs: $RUNS$( [ "$QUICK" = 1 ] && echo " (quick mode)"); logs in $LOGS"

write_backend_conf
start_system backend
BULK_SHA=$(sha256sum <"$OUT/backend/html/1m.bin" | cut -d' ' -f1)
for sys in $SYSTEMS; do
	case $sys in
	nginx-http) write_nginx_http_conf ;;
	nginx-stream) write_nginx_stream_conf ;;
	mtls-*) write_mtls_conf "$sys" ;;
	esac
	start_system "$sys"
	verify_system "$sys"
	say "$sys: pid $(pids_of "$sys" | tr '\n' ' ')on 127.0.0.1:$(port_of "$sys")"
done

# Warm-up (not recorded): fill caches, connection pools and allocators.
say "warming up"
for sys in $SYSTEMS; do
	port=$(port_of "$sys")
	ab -E "$PKI/client.pem" -n 200 -c "$HS_C" "https://127.0.0.1:$port/" >"$LOGS/$sys-warmup.txt" 2>&1 || true
	ab -k -E "$PKI/client.pem" -n 2000 -c "$KA_C" "https://127.0.0.1:$port/" >>"$LOGS/$sys-warmup.txt" 2>&1 || true
	ab -k -E "$PKI/client.pem" -n 20 -c "$BULK_C" "https://127.0.0.1:$port/1m.bin" >>"$LOGS/$sys-warmup.txt" 2>&1 || true
done

for run in $(seq "$RUNS"); do
	say "--- round $run of $RUNS"
	for sys in $SYSTEMS; do ab_run "$sys" hs "$run"; done
	for sys in $SYSTEMS; do ab_run "$sys" ka "$run"; done
	for sys in $SYSTEMS; do ab_run "$sys" bulk "$run"; done
	for sys in $SYSTEMS; do stime_run "$sys" new "$run"; done
	for sys in $SYSTEMS; do stime_run "$sys" reuse "$run"; done
done
# Peak RSS after the load, before the idle-connection test restarts the
# proxies.
for sys in $SYSTEMS; do
	rec "$sys" peak_rss 1 ok "$(mem_kib "$sys" VmHWM)"
done
for run in $(seq "$RUNS"); do
	say "--- idle connections, round $run of $RUNS"
	for sys in $SYSTEMS; do idle_run "$sys" "$run"; done
done
if [ "$SCALE_N" -gt 0 ]; then
	say "--- $SCALE_N idle connections at once (http front ends)"
	for sys in $SYSTEMS; do
		case $sys in *-http) scale_run "$sys" ;; esac
	done
fi
meta LOAD_END "$(cut -d' ' -f1-3 /proc/loadavg)"

cleanup
trap cleanup EXIT

report=(python3 "$ROOT/bench/report.py" "$RESULTS" "$META")
if [ "$DOCS" = 1 ]; then
	report+=(--docs "$ROOT/docs/performance.md")
fi
"${report[@]}" --out "$OUT/results.md"
