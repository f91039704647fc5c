package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/data"
)

// Bounds of --decode-memory.
const (
	minDecodeMemory = 64 << 20
	maxDecodeMemory = 1 << 40
)

// decodeMemoryFlag adds --decode-memory to fs; the function it returns applies the flag to the
// process's image-decoding budget, or says what is wrong with its value.
func decodeMemoryFlag(fs *flag.FlagSet, command string) func() error {
	v := fs.String("decode-memory", "1GiB", "memory budget of image decoding, shared by all decoder workers (an image that alone needs more is refused; units KiB, MiB, GiB)")
	return func() error {
		n, err := parseBytes(*v)
		if err != nil || n < minDecodeMemory || n > maxDecodeMemory {
			return usageError(command, "--decode-memory %q: want a size from 64MiB to 1TiB, such as 2GiB", *v)
		}
		data.DefaultDecodeBudget().SetLimit(n)
		return nil
	}
}

// parseBytes reads a byte count with an optional binary unit: 512MiB, 2GiB, 1G, 4096.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		shift  uint
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"K", 10}, {"M", 20}, {"G", 30}, {"T", 40}, {"B", 0}}
	var shift uint
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(f >= 0) || f*float64(int64(1)<<shift) > 1<<62 {
		return 0, fmt.Errorf("not a size")
	}
	return int64(f * float64(int64(1)<<shift)), nil
}
