package cost

import "fmt"

// FormatCount renders a count as 1.23M, 34.5k ... (exact below 10,000).
func FormatCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// FormatBytes renders a byte count as 12.3 MiB ...
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// FormatFLOPs renders FLOPs as 12.34 GFLOP ...
func FormatFLOPs(f float64) string {
	switch {
	case f >= 1e12:
		return fmt.Sprintf("%.2f TFLOP", f/1e12)
	case f >= 1e9:
		return fmt.Sprintf("%.2f GFLOP", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%.2f MFLOP", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.2f kFLOP", f/1e3)
	}
	return fmt.Sprintf("%.0f FLOP", f)
}
