#!/usr/bin/env bash
# Counts the instructions one operation of each side of the gRPC and MQ
# rows executes, under valgrind --tool=callgrind, which counts the same
# whatever else the machine runs: the time benchmarks (run.sh) drift by
# more than the 2% issue 16 asks about on a shared 2-core machine.
#
#   ./instr.sh            # gRPC, inject, then MQ, ~17 minutes
#   ./instr.sh grpc       # or: mq, inject (BenchmarkInject's sides, ~2 minutes)
#   N1=200 N2=2000 REPS=2 ./instr.sh grpc
#   ONLY='^(plain|taglane-untagged)$' ./instr.sh grpc   # some sides only
#
# Each side is one sub-benchmark, run alone (-test.bench selects it) from
# the compiled test binary at two iteration counts N1 < N2 (-test.benchtime
# Nx). Its instructions per op are (Ir(N2) - Ir(N1)) / (N2 - N1): the
# process start, the servers, the dial, the warm-up call and the exit are
# the same in both runs and cancel. Every side is measured REPS times; the
# spread is (max - min) / mean of its per-op counts over the repeats.
#
# MQ: kind=lane-skip is a lane consumer skipping every message (none is
# of its tag), kind=lane-skip-noprefilter the same with mq's pull-side
# prefilter replaced by a pass-through filter hook; handler=none only
# (they call no handler). kind=preload starts the broker and sends the messages and consumes
# none; its per-op count is subtracted from the plain and stable sides',
# leaving each consumer's own work per message. kind=stable-hourly is the
# stable consumer reading lane liveness hourly instead of every 250 ms (see
# BenchmarkMQConsumeInstr): its per-message work without the refreshes,
# which valgrind's slowness multiplies per message.
#
# Go under valgrind: GOMAXPROCS=1 (valgrind runs one thread at a time
# anyway, and idle Ps spinning for work would add counts that depend on
# timing) and GODEBUG=asyncpreemptoff=1 (callgrind 3.19 aborts on the
# SIGURG preemption signals: "vgCallgrind_post_signal: Assertion").
#
# GOGC=off by default: a collection costs millions of instructions and
# how many fall between the N1 and N2 runs is a whole number that moves
# by one with a few bytes more or less, a step of several percent per op.
# Without the collector the count is the work of the calls themselves;
# what they allocate, and so what they will cost the collector, is in the
# B/op and allocs/op columns of the same benchmark lines (-benchmem), and
# GOGC=100 ./instr.sh counts with the collector on.
set -euo pipefail
cd "$(dirname "$0")"

what=${1:-all}
reps=${REPS:-2}
gogc=${GOGC:-off}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=$work/bench.test
go test -c -o "$bin" .

# count SUB N: prints the instructions executed by the whole process
# running sub-benchmark SUB (an anchored -test.bench pattern) N times.
count() {
	local log=$work/run.log
	if ! GOGC=$gogc GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --cache-sim=no \
		--callgrind-out-file="$work/callgrind.out" \
		"$bin" -test.run '^$' -test.bench "$1" -test.benchtime="$2x" >"$log" 2>&1; then
		echo "instr.sh: $1 at $2x failed:" >&2
		tail -20 "$log" >&2
		exit 1
	fi
	# exactly one benchmark line with N iterations, or the pattern
	# selected the wrong thing
	if [ "$(grep -cE "^Benchmark.*[[:space:]]$2[[:space:]]" "$log")" != 1 ]; then
		echo "instr.sh: $1 at $2x did not run exactly one sub-benchmark $2 times:" >&2
		grep -E '^(Benchmark|---|FAIL)' "$log" >&2 || true
		exit 1
	fi
	sed -nE 's/^==[0-9]+== Collected : ([0-9]+)$/\1/p' "$log"
}

# measure TITLE N1 N2 NAME=PATTERN...: per side and repeat, the raw counts
# and the per-op count, as "side NAME rep R n1 N1 ir1 IR1 n2 N2 ir2 IR2
# perop P" lines.
measure() {
	local n1=$1 n2=$2
	shift 2
	local rep spec name pat ir1 ir2
	for rep in $(seq "$reps"); do
		for spec in "$@"; do
			name=${spec%%=*} pat=${spec#*=}
			[[ $name =~ ${ONLY:-.} ]] || continue
			ir1=$(count "$pat" "$n1")
			ir2=$(count "$pat" "$n2")
			echo "side $name rep $rep n1 $n1 ir1 $ir1 n2 $n2 ir2 $ir2 perop $(((ir2 - ir1) / (n2 - n1)))"
		done
	done
}

# summary [BASE]: reads measure's lines, prints per side the mean per-op
# count and the spread over repeats, with BASE's mean subtracted first
# when given (the MQ preload).
summary() {
	awk -v base="${1:-}" '
	$1 == "side" { name = $2; v = $NF; n[name]++; sum[name] += v
		if (!(name in lo) || v < lo[name]) lo[name] = v
		if (!(name in hi) || v > hi[name]) hi[name] = v
		if (!(name in seen)) { seen[name] = 1; order[++k] = name } }
	END {
		for (i = 1; i <= k; i++) {
			s = order[i]; m = sum[s] / n[s]
			printf "mean %s perop %.0f spread %.2f%%", s, m, 100 * (hi[s] - lo[s]) / m
			if (base != "" && s != base) printf " minus-%s %.0f", base, m - sum[base] / n[base]
			printf "\n"
		}
	}'
}

# ratio A B: A over B, in percent, from summary lines (field 4 is the
# per-op count, field 8 the count less the base when there is one).
ratio() {
	awk -v a="$1" -v b="$2" -v f="${3:-4}" '
	$1 == "mean" { v[$2] = $f }
	END { if (v[a] != "" && v[b] > 0) printf "ratio %s/%s %.2f%%\n", a, b, 100 * v[a] / v[b] }'
}

header() {
	echo "# instr.sh $1 $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ../rpc ../tagctx ../mq || echo +dirty)"
	echo "# $(go version) $(valgrind --version) GOGC=$gogc GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 callgrind --cache-sim=no reps=$reps"
}

if [ "$what" = all ] || [ "$what" = grpc ]; then
	n1=${N1:-200} n2=${N2:-1000}
	out=${OUT_GRPC:-results/instr-grpc.txt}
	{
		header grpc
		for kind in unary stream; do
			echo "## kind=$kind"
			p="^BenchmarkGRPC\$/^kind=$kind\$"
			measure "$n1" "$n2" \
				plain="$p/^vs=plain\$/^side=peer\$" \
				plain-tag-metadata="$p/^vs=plain-tag-metadata\$/^side=peer\$" \
				taglane-untagged="$p/^vs=plain\$/^side=taglane\$" \
				taglane-tagged="$p/^vs=plain-tag-metadata\$/^side=taglane\$" \
				otelgrpc-baggage="$p/^vs=otelgrpc-baggage\$/^side=peer\$" \
				noop-interceptors="$p/^vs=noop-interceptors\$/^side=peer\$" | tee "$work/$kind"
			summary <"$work/$kind" | tee "$work/$kind.sum"
			ratio taglane-untagged plain <"$work/$kind.sum"
			ratio taglane-tagged plain-tag-metadata <"$work/$kind.sum"
			ratio taglane-tagged plain <"$work/$kind.sum"
			ratio otelgrpc-baggage plain-tag-metadata <"$work/$kind.sum"
			ratio noop-interceptors plain <"$work/$kind.sum"
			ratio taglane-untagged noop-interceptors <"$work/$kind.sum"
		done
	} | tee "$out"
fi

if [ "$what" = all ] || [ "$what" = inject ]; then
	n1=${N1:-20000} n2=${N2:-120000}
	out=${OUT_INJECT:-results/instr-inject.txt}
	{
		header inject
		p='^BenchmarkInject$'
		measure "$n1" "$n2" \
			otel-baggage="$p/^vs=otel-baggage\$/^side=peer\$" \
			taglane="$p/^vs=otel-baggage\$/^side=taglane\$" \
			otel-baggage-members="$p/^vs=otel-baggage-members\$/^side=peer\$" \
			taglane-members="$p/^vs=otel-baggage-members\$/^side=taglane\$" | tee "$work/inject"
		summary <"$work/inject" | tee "$work/inject.sum"
		ratio taglane otel-baggage <"$work/inject.sum"
		ratio taglane-members otel-baggage-members <"$work/inject.sum"
	} | tee "$out"
fi

if [ "$what" = all ] || [ "$what" = mq ]; then
	n1=${N1:-1000} n2=${N2:-4000}
	out=${OUT_MQ:-results/instr-mq.txt}
	{
		header mq
		for handler in ${HANDLERS:-none}; do
			echo "## handler=$handler"
			p="^BenchmarkMQConsumeInstr\$/^handler=$handler\$"
			measure "$n1" "$n2" \
				preload="$p/^kind=preload\$" \
				plain="$p/^kind=plain\$" \
				stable="$p/^kind=stable\$" \
				stable-hourly="$p/^kind=stable-hourly\$" \
				lane-skip="$p/^kind=lane-skip\$" \
				lane-skip-noprefilter="$p/^kind=lane-skip-noprefilter\$" | tee "$work/$handler"
			summary preload <"$work/$handler" | tee "$work/$handler.sum"
			ratio plain stable-hourly 8 <"$work/$handler.sum" | sed 's|ratio plain/stable-hourly|stable-hourly-%-of-plain (consumer work only)|'
			# throughput is the inverse of the work per message:
			# stable's throughput in percent of plain's is plain's count
			# over stable's
			ratio plain stable 8 <"$work/$handler.sum" | sed 's|ratio plain/stable|stable-%-of-plain (consumer work only)|'
			ratio plain stable <"$work/$handler.sum" | sed 's|ratio plain/stable|stable-%-of-plain (with preload)|'
			# a lane consumer skipping every message, against plain
			# handling every one: the same drain, and with and without
			# mq's pull-side prefilter
			ratio plain lane-skip 8 <"$work/$handler.sum" | sed 's|ratio plain/lane-skip|lane-skip-%-of-plain (consumer work only)|'
			ratio plain lane-skip-noprefilter 8 <"$work/$handler.sum" | sed 's|ratio plain/lane-skip-noprefilter|lane-skip-noprefilter-%-of-plain (consumer work only)|'
		done
	} | tee "$out"
fi
