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
// the same round, in percent. Where the process CPU time can be read, it
// reports the same for CPU time (cpu-ns/op, cpu-%-of-): the CPU the
// process spent on the block, client and server alike, which waiting for
// a core that other processes hold does not inflate.
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
	_, haveCPU := cpuTime()
	n := len(sides)
	wall, cpu := make([][]float64, n), make([][]float64, n)
	wallRatio, cpuRatio := make([][]float64, n), make([][]float64, n)
	d, c := make([]time.Duration, n), make([]time.Duration, n)
	round := 0
	for b.Loop() {
		for k := range sides {
			i := (k + round) % n
			c0, _ := cpuTime()
			start := time.Now()
			sides[i].run()
			d[i] = time.Since(start)
			c1, _ := cpuTime()
			c[i] = c1 - c0
		}
		for i, s := range sides {
			wall[i] = append(wall[i], float64(d[i])/float64(per))
			cpu[i] = append(cpu[i], float64(c[i])/float64(per))
			if s.vs >= 0 {
				wallRatio[i] = append(wallRatio[i], float64(d[i])/float64(d[s.vs]))
				if c[s.vs] > 0 {
					cpuRatio[i] = append(cpuRatio[i], float64(c[i])/float64(c[s.vs]))
				}
			}
		}
		round++
	}
	for i, s := range sides {
		b.ReportMetric(median(wall[i]), s.name+"-ns/op")
		if haveCPU {
			b.ReportMetric(median(cpu[i]), s.name+"-cpu-ns/op")
		}
		if s.vs >= 0 {
			b.ReportMetric(100*median(wallRatio[i]), s.name+"-%-of-"+sides[s.vs].name)
			if haveCPU && len(cpuRatio[i]) > 0 {
				b.ReportMetric(100*median(cpuRatio[i]), s.name+"-cpu-%-of-"+sides[s.vs].name)
			}
		}
	}
}

func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}
