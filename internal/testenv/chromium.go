package testenv

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Page is what headless Chromium made of an HTML file.
type Page struct {
	// DOM is the document after loading (--dump-dom).
	DOM string
	// Screenshot is the rendered page (--screenshot) at the window size asked for.
	Screenshot image.Image
	// Problems are the browser's log lines about the page: console messages, failed requests,
	// uncaught exceptions.
	Problems []string
}

// Chromium loads the HTML file page in headless Chromium (Debian's chromium) with networking
// cut off, and returns its DOM, a screenshot and the problems it logged. Without Chromium the
// test is skipped, unless SKIPGRAPH_REQUIRE_CHROMIUM is set (CI sets it).
func Chromium(t testing.TB, page string, width, height int) *Page {
	t.Helper()
	bin := Program(t, "SKIPGRAPH_REQUIRE_CHROMIUM", "chromium", "chromium", "chromium-browser", "google-chrome")
	dir := t.TempDir()
	out := &Page{}
	run := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile"), "--enable-logging=stderr", "--v=0",
			// Any request leaving the machine fails at once (and is logged).
			"--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"}
		abs, err := filepath.Abs(page)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+abs)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
		}
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(line, "CONSOLE") || strings.Contains(line, "net::ERR") || strings.Contains(line, "Uncaught") {
				out.Problems = append(out.Problems, line)
			}
		}
		return stdout.Bytes()
	}
	out.DOM = string(run("--dump-dom"))
	shot := filepath.Join(dir, "shot.png")
	run("--screenshot="+shot, "--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), "--hide-scrollbars")
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if out.Screenshot, err = png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("chromium's screenshot: %v", err)
	}
	return out
}

// CountPixels counts the pixels of img for which match(r, g, b) holds (8-bit channels).
func CountPixels(img image.Image, match func(r, g, b uint8) bool) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if match(uint8(r>>8), uint8(g>>8), uint8(b>>8)) {
				n++
			}
		}
	}
	return n
}
