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
func FormatBytes(n int64) string { return FormatBytesF(float64(n)) }

// FormatBytesF renders a byte count held in a float64 (an estimate, which may exceed any int64)
// as 12.3 MiB ...
func FormatBytesF(n float64) string {
	switch {
	case n >= 1<<60:
		return fmt.Sprintf("%.3g EiB", n/(1<<60))
	case n >= 1<<50:
		return fmt.Sprintf("%.2f PiB", n/(1<<50))
	case n >= 1<<40:
		return fmt.Sprintf("%.2f TiB", n/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", n/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
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
