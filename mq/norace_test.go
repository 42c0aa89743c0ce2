//go:build !race

package mq_test

import "testing"

// skipIfClientRaces: see race_test.go.
func skipIfClientRaces(testing.TB) {}
