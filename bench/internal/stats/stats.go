// Package stats holds the small statistics the benchmark tools share.
package stats

import "sort"

// Median returns the median of x (the mean of the middle two for an even count; 0 for none),
// leaving x as it is.
func Median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
