//go:build !unix

package bench

import "time"

// cpuTime is not measured here: the paired benchmarks report wall-clock
// figures only.
func cpuTime() (time.Duration, bool) { return 0, false }
