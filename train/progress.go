package train

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progress draws a progress bar (a terminal) or prints plain lines (anything else).
type progress struct {
	w       io.Writer
	tty     bool
	total   int
	start   time.Time
	done0   int // steps done when this process started
	last    time.Time
	drawn   bool
	lastPct int
}

// IsTerminal reports whether w is a terminal (an *os.File the terminal driver answers for; a
// character device such as /dev/null is not one).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newProgress(w io.Writer, tty bool, total, done int) *progress {
	return &progress{w: w, tty: tty, total: total, done0: done, start: time.Now(), lastPct: -1}
}

// rate returns steps per second since this process started training and the ETA.
func (p *progress) rate(done int) (float64, time.Duration) {
	el := time.Since(p.start).Seconds()
	n := done - p.done0
	if n <= 0 || el <= 0 {
		return 0, 0
	}
	r := float64(n) / el
	return r, time.Duration(float64(p.total-done)/r) * time.Second
}

// step reports a finished step.
func (p *progress) step(epoch, epochs, done int, loss, acc float64) {
	if p.w == nil {
		return
	}
	r, eta := p.rate(done)
	if p.tty {
		if time.Since(p.last) < 100*time.Millisecond && done < p.total {
			return
		}
		p.last = time.Now()
		const width = 24
		fill := width * done / max(p.total, 1)
		bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
		fmt.Fprintf(p.w, "\r\033[Kepoch %d/%d [%s] %d/%d loss %.4f acc %5.1f%% %.2f steps/s ETA %s", epoch, epochs, bar, done, p.total, loss, 100*acc, r, fmtDur(eta))
		p.drawn = true
		return
	}
	pct := 10 * done / max(p.total, 1)
	if pct != p.lastPct && pct < 10 {
		p.lastPct = pct
		fmt.Fprintf(p.w, "step %d/%d epoch %d/%d loss %.4f acc %.1f%% %.2f steps/s ETA %s\n", done, p.total, epoch, epochs, loss, 100*acc, r, fmtDur(eta))
	}
}

// line prints a message on a line of its own.
func (p *progress) line(format string, args ...any) {
	if p.w == nil {
		return
	}
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// finish ends the bar's line.
func (p *progress) finish() {
	if p.w != nil && p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	if d < time.Hour {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
