package rocketmqtest

// HeldPulls counts the pulls brokers hold at the end of a queue (long
// polling), so that tests can wait for one instead of sleeping.
func (s *Server) HeldPulls() int {
	n := 0
	for _, b := range s.brokers {
		b.mu.Lock()
		for _, t := range b.topics {
			for _, q := range t.queues {
				n += len(q.waiters)
			}
		}
		b.mu.Unlock()
	}
	return n
}
