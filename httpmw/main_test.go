package httpmw_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/taglane/taglane/tagctx"
)

func TestMain(m *testing.M) {
	// The tests choose node tags themselves (WithNode, tagctx.SetNode); a
	// TAGLANE_TAG inherited from the shell would change every expectation.
	tagctx.SetNode(tagctx.Tag{})
	goleak.VerifyTestMain(m)
}
