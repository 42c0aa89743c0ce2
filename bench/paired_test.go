package bench

import (
	"slices"
	"testing"
	"time"
)

// paired runs the sides in alternating blocks, one block of each per
// round, the order rotating from round to round, and reports per side the
// median block time divided by per (the operations in a block), and per
// side after the first its median ratio to the first side in percent.
//
// On a shared machine the speed drifts by more than the differences to be
// seen, between consecutive benchmarks and within one; blocks a few
// milliseconds apart see the same drift, and the median drops the rounds
// a burst of load hit.
func paired(b *testing.B, per int, names []string, sides []func()) {
	b.Helper()
	for _, f := range sides { // warm up caches, connections, pools
		f()
	}
	times := make([][]float64, len(sides))
	ratios := make([][]float64, len(sides))
	d := make([]time.Duration, len(sides))
	round := 0
	for b.Loop() {
		for k := range sides {
			i := (k + round) % len(sides)
			start := time.Now()
			sides[i]()
			d[i] = time.Since(start)
		}
		for i := range sides {
			times[i] = append(times[i], float64(d[i])/float64(per))
			ratios[i] = append(ratios[i], float64(d[i])/float64(d[0]))
		}
		round++
	}
	for i, name := range names {
		b.ReportMetric(median(times[i]), name+"-ns/op")
		if i > 0 {
			b.ReportMetric(100*median(ratios[i]), name+"-%-of-"+names[0])
		}
	}
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
