//go:build !race

package rocketmqtest

const raceEnabled = false
