package tagctx

import (
	"fmt"
	"os"
)

// envErr is why TAGLANE_TAG was refused at start-up; nil if it was not.
// Written by init only.
var envErr error

// exitInvalidNode stops a process whose TAGLANE_TAG is invalid. A variable
// so the package's tests can watch it instead of exiting.
var exitInvalidNode = func(err error) {
	fmt.Fprintf(os.Stderr, "%v (fix or unset %s, or call tagctx.SetNode before serving)\n", err, EnvNodeTag)
	os.Exit(2)
}

// NodeErr returns why the node tag could not be read from TAGLANE_TAG, or
// nil if it could (unset or empty included) or if SetNode has set the node
// tag since.
//
// A process meant for a lane must not quietly start as a stable instance:
// it would serve stable traffic with lane code. So while NodeErr is not
// nil, the first call of Node (which every entry point, client and
// consumer makes before deciding anything) prints one line to stderr,
//
//	tagctx: TAGLANE_TAG: tagctx: invalid tag "Feature_X": character '_' at byte 7 is not in [a-z0-9-] (fix or unset TAGLANE_TAG, or call tagctx.SetNode before serving)
//
// and exits with status 2. The package's init does not: a program that
// wants its own message, exit code or fallback checks NodeErr first thing
// in main, and either stops or calls SetNode.
func NodeErr() error {
	if node.Load() != nil {
		return nil
	}
	return envErr
}

// nodeUnset is Node when no node tag was stored: only when TAGLANE_TAG was
// invalid (init stores one otherwise).
func nodeUnset() Tag {
	if err := NodeErr(); err != nil {
		exitInvalidNode(err)
	}
	return Tag{}
}
