#!/usr/bin/env bash
# Reproduces the README's benchmark table: every benchmark of this module
# COUNT times (default 6, the fewest for which benchstat gives a 95%
# interval), saved to OUT, then two benchstat tables: taglane side by side
# with each peer, and the paired-block ratios.
#
#   ./run.sh                          # everything, about 15 minutes on 2 cores
#   BENCH='Lookup|Inject' COUNT=10 ./run.sh
#   BENCH=MQConsumePaired BENCHTIME=3x ./run.sh   # 3 ops of 4 rounds per count
set -euo pipefail
cd "$(dirname "$0")"

count=${COUNT:-6}
bench=${BENCH:-.}
benchtime=${BENCHTIME:-1s}
out=${OUT:-results/latest.txt}
benchstat=(go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)

mkdir -p "$(dirname "$out")"
go test -run '^$' -bench "$bench" -benchmem -benchtime "$benchtime" -count "$count" -timeout 120m . >"$out"
echo "== taglane beside each peer: median ± 95% interval; 'vs base' is taglane against the peer"
"${benchstat[@]}" -col /side -filter '/side:(peer OR taglane)' "$out"
echo
echo "== paired blocks: medians of per-round times and ratios (ns/op, B/op and allocs/op there are per round)"
"${benchstat[@]}" -filter '.name:/Paired$/ .unit:/%-of-|-ns\/op|-sec\/op|msgs\/s/' "$out"
