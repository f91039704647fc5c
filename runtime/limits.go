package runtime

import (
	goruntime "runtime"

	"github.com/skipgraph/skipgraph/errs"
)

// threadsPerCPU bounds the thread pools a session may ask for: more threads than a few per CPU
// only add memory (each ORT thread has its own stack and scratch) and contention.
const threadsPerCPU = 4

// MaxThreads is the largest thread count a session accepts: threadsPerCPU times the CPUs of
// the machine.
func MaxThreads() int { return threadsPerCPU * goruntime.NumCPU() }

// CheckThreads refuses a thread count (as given with --threads) below 0 or above MaxThreads,
// with a message naming flag; 0 keeps ONNX Runtime's default.
func CheckThreads(flag string, n int) error {
	if n < 0 || n > MaxThreads() {
		return errs.Input("%s %d: want 0 (ONNX Runtime's default: one per core) to %d (%d per CPU, %d CPUs)", flag, n, MaxThreads(), threadsPerCPU, goruntime.NumCPU())
	}
	return nil
}
