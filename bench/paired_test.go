package bench

import (
	"slices"
	"testing"
	"time"
)

// vs runs the peer's benchmark and taglane's as sub-benchmarks
// vs=<peer>/side=peer and vs=<peer>/side=taglane, so that
// benchstat -col /side sets them side by side, one row per peer, with
// taglane's difference and its p-value (run.sh).
func vs(b *testing.B, peer string, peerRun, taglaneRun func(*testing.B)) {
	b.Run("vs="+peer+"/side=peer", peerRun)
	b.Run("vs="+peer+"/side=taglane", taglaneRun)
}

// side is one contestant of a paired benchmark: its name, the index of
// the side it is compared with (-1 for none) and one block of its work.
type side struct {
	name string
	vs   int
	run  func()
}

// paired runs the sides in alternating blocks, one block of each per
// round, the order rotating from round to round, and reports per side the
// median block time divided by per (the operations in a block) and, when
// it has a side to compare with, its median ratio to that side's block of
// the same round, in percent.
//
// On a shared machine the speed drifts by more than the differences to be
// seen, between consecutive benchmarks and within one; blocks a few
// milliseconds apart see the same drift, and the median drops the rounds
// a burst of load hit.
func paired(b *testing.B, per int, sides []side) {
	b.Helper()
	for _, s := range sides { // warm up caches, connections, pools
		s.run()
	}
	times := make([][]float64, len(sides))
	ratios := make([][]float64, len(sides))
	d := make([]time.Duration, len(sides))
	round := 0
	for b.Loop() {
		for k := range sides {
			i := (k + round) % len(sides)
			start := time.Now()
			sides[i].run()
			d[i] = time.Since(start)
		}
		for i, s := range sides {
			times[i] = append(times[i], float64(d[i])/float64(per))
			if s.vs >= 0 {
				ratios[i] = append(ratios[i], float64(d[i])/float64(d[s.vs]))
			}
		}
		round++
	}
	for i, s := range sides {
		b.ReportMetric(median(times[i]), s.name+"-ns/op")
		if s.vs >= 0 {
			b.ReportMetric(100*median(ratios[i]), s.name+"-%-of-"+sides[s.vs].name)
		}
	}
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
