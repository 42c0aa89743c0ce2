package mq

// Freeze holds c's consume paths and its ticker loop as SIGSTOP would: a
// handler call that already decided stays blocked before its ack, pulled
// messages wait, the refresh that already got its answers waits before
// publishing them, and c keeps its beliefs. resume lets everything go on.
// It lives in a _test file of package mq, so only this package's tests
// (internal and external) can call it.
func Freeze(c *Consumer) (resume func()) {
	ch := make(chan struct{})
	c.pause.Store(&ch)
	return func() {
		c.pause.Store(nil)
		close(ch)
	}
}
