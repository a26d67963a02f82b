//go:build race

package tunnel

// raceEnabled: the race detector allocates, so allocation tests skip.
const raceEnabled = true
