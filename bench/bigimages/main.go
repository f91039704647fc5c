// Command bigimages writes an image-folder data set of large PNGs, for measuring the memory of
// image decoding: class a holds one 11000x11000 8-bit RGBA image (0.5 GB of pixels once
// decoded), class b seven 6000x6000 16-bit ones (0.3 GB each). The files are small (a
// gradient compresses well).
//
//	go run ./bench/bigimages -o /tmp/bigimages
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skipgraph/skipgraph/data"
)

func main() {
	out := flag.String("o", "", "folder to write (class folders a/ and b/)")
	big := flag.Int("big", 11000, "side of the 8-bit image")
	deep := flag.Int("deep", 6000, "side of the 16-bit images")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "bigimages: -o DIR is required")
		os.Exit(2)
	}
	if err := write(*out, *big, *deep); err != nil {
		fmt.Fprintln(os.Stderr, "bigimages:", err)
		os.Exit(1)
	}
}

func write(out string, big, deep int) error {
	for _, c := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(out, c), 0o755); err != nil {
			return err
		}
	}
	if err := data.WriteLargePNG(filepath.Join(out, "a", "big.png"), big, big, 8, true); err != nil {
		return err
	}
	for i := range 7 {
		if err := data.WriteLargePNG(filepath.Join(out, "b", fmt.Sprintf("deep%d.png", i)), deep, deep, 16, i%2 == 0); err != nil {
			return err
		}
	}
	return nil
}
