//go:build race

package httpmw_test

// The race detector allocates on its own; allocation counts mean nothing.
const raceEnabled = true
