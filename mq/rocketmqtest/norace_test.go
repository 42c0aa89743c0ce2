//go:build !race

package rocketmqtest_test

import "testing"

// skipIfClientRaces: see race_test.go.
func skipIfClientRaces(testing.TB) {}
