package testenv

import (
	"runtime"
	"time"
)

// GoroutinesBack waits up to a second for the number of goroutines to fall to n (taken before
// the code under test ran) and reports whether it did: a goroutine the code left running shows
// as a false.
func GoroutinesBack(n int) bool {
	for range 100 {
		if runtime.NumGoroutine() <= n {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
