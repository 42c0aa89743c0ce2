package bench

import (
	"testing"

	"github.com/taglane/taglane/mq/rocketmqtest"
)

// BenchmarkMQConsumeInstr is BenchmarkMQConsume cut for counting
// instructions (instr.sh runs it under valgrind --tool=callgrind): one
// side per sub-benchmark, so that a -test.bench pattern selects exactly
// one, b.N messages per op, and the handler chosen by name (none, peek,
// log) rather than fixed at log.
//
// kind=preload starts the embedded broker, creates the topic and sends
// the b.N messages, and consumes nothing: the part of the plain and
// stable sides' count that grows with b.N but is neither consumer's
// work, which instr.sh subtracts from both before it divides.
func BenchmarkMQConsumeInstr(b *testing.B) {
	rocketmqtest.SkipIfClientRaces(b)
	for work, name := range workNames {
		b.Run("handler="+name, func(b *testing.B) {
			b.Run("kind=preload", func(b *testing.B) {
				s := rocketmqtest.RunT(b)
				if err := s.CreateTopic("bench", 4); err != nil {
					b.Fatal(err)
				}
				preload(b, s, "bench", b.N)
			})
			for _, kind := range []string{"plain", "stable"} {
				b.Run("kind="+kind, func(b *testing.B) {
					b.ReportAllocs()
					consumeAll(b, kind, b.N, work, b.ResetTimer)
				})
			}
		})
	}
}
