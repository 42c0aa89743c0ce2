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

// FrameBytesInFlight is what partly received frames hold now.
func (s *Server) FrameBytesInFlight() int64 { return s.frames.InFlight() }

// Notifications counts the NOTIFY_CONSUMER_IDS_CHANGED requests sent.
func (s *Server) Notifications() int64 { return s.notified.Load() }

// Connections counts the open connections of the name server and brokers.
func (s *Server) Connections() int {
	eps := []*endpoint{s.ns}
	for _, b := range s.brokers {
		eps = append(eps, b.ep)
	}
	n := 0
	for _, e := range eps {
		e.mu.Lock()
		n += len(e.conns)
		e.mu.Unlock()
	}
	return n
}
