//go:build race

package rpc_test

// The race detector allocates on its own; allocation counts mean nothing.
const raceEnabled = true
