package tagctx

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// withNode sets the node tag for one test and restores it after.
func withNode(t testing.TB, tag Tag) {
	t.Helper()
	old := Node()
	SetNode(tag)
	t.Cleanup(func() { SetNode(old) })
}
