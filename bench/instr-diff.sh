#!/usr/bin/env bash
# Where a side's extra instructions go: runs two sub-benchmarks (SIDE and
# BASE, anchored -test.bench patterns as in instr.sh) under callgrind at
# N1 and N2 iterations, takes each function's own (exclusive) count per op
# as (Ir(N2) - Ir(N1)) / (N2 - N1), and prints the functions whose per-op
# count differs most between SIDE and BASE, then every function of
# taglane's own packages on SIDE.
#
#   ./instr-diff.sh '^BenchmarkGRPC$/^kind=unary$/^vs=plain-tag-metadata$/^side=taglane$' \
#                   '^BenchmarkGRPC$/^kind=unary$/^vs=plain-tag-metadata$/^side=peer$'
#
# Same settings as instr.sh (GOGC=off unless set, GOMAXPROCS=1,
# GODEBUG=asyncpreemptoff=1). TOP (default 30) lines of the difference.
set -euo pipefail
cd "$(dirname "$0")"
side=$1 base=$2
n1=${N1:-200} n2=${N2:-1000} top=${TOP:-30} gogc=${GOGC:-off}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/bench.test" .

# perfn PATTERN N OUT: exclusive Ir per function, "count name" lines.
perfn() {
	GOGC=$gogc GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --cache-sim=no \
		--callgrind-out-file="$work/cg.out" \
		"$work/bench.test" -test.run '^$' -test.bench "$1" -test.benchtime="$2x" >"$work/log" 2>&1 ||
		{ tail -20 "$work/log" >&2; exit 1; }
	callgrind_annotate --threshold=100 --inclusive=no --auto=no "$work/cg.out" |
		awk '
		# "N (P%)  file:function [binary]"; the binary is left off where the
		# file is one inlined into function: summed under function, as are
		# the activations callgrind tells apart with a quote and a number
		# after the name (recursion, and goroutine switches it takes for calls).
		/^ *[0-9,]+ \( *[0-9.]+%\)  / && !/PROGRAM TOTALS/ {
			n = $1; gsub(/,/, "", n)
			f = $0; sub(/^ *[0-9,]+ \( *[0-9.]+%\)  /, "", f)
			sub(/ \[[^]]*\]$/, "", f); sub(/^[^:]*:/, "", f); sub(/\047[0-9]+$/, "", f)
			c[f] += n
		}
		END { for (f in c) print c[f], f }' >"$3"
}
perfn "$side" "$n1" "$work/s1"
perfn "$side" "$n2" "$work/s2"
perfn "$base" "$n1" "$work/b1"
perfn "$base" "$n2" "$work/b2"

echo "# instr-diff.sh N1=$n1 N2=$n2 GOGC=$gogc $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)"
echo "# side: $side"
echo "# base: $base"
awk -v d="$((n2 - n1))" -v top="$top" '
	FNR == 1 { f++ }
	{ v = $1; $1 = ""; name = substr($0, 2)
	  if (f == 1) s1[name] = v; else if (f == 2) s2[name] = v
	  else if (f == 3) b1[name] = v; else b2[name] = v
	  all[name] = 1 }
	END {
		for (n in all) {
			s = (s2[n] - s1[n]) / d; b = (b2[n] - b1[n]) / d
			diff[n] = s - b; ss[n] = s; bb[n] = b
			ts += s; tb += b
		}
		printf "per op: side %.0f base %.0f difference %+.0f (%+.2f%%)\n", ts, tb, ts - tb, 100 * (ts - tb) / tb
		printf "\n%-12s %-12s %-12s %s\n", "diff/op", "side/op", "base/op", "function (exclusive)"
		cmd = "sort -k1,1gr | head -" top
		for (n in diff) if (diff[n] > 0.5) printf "%+12.1f %12.1f %12.1f %s\n", diff[n], ss[n], bb[n], n | cmd
		close(cmd)
		printf "\nfewer on side:\n"
		cmd = "sort -k1,1g | head -10"
		for (n in diff) if (diff[n] < -0.5) printf "%+12.1f %12.1f %12.1f %s\n", diff[n], ss[n], bb[n], n | cmd
		close(cmd)
		printf "\ntaglane functions on side (exclusive per op):\n"
		cmd = "sort -k1,1gr"
		for (n in ss) if (n ~ /^github.com\/taglane\/taglane\/(rpc|tagctx|mq|httpmw)[.\/]/ && ss[n] > 0.5) printf "%12.1f %s\n", ss[n], n | cmd
		close(cmd)
	}' "$work/s1" "$work/s2" "$work/b1" "$work/b2"
