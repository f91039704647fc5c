package data

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
)

// WriteLargePNG writes a w x h PNG of 8 or 16 bits per sample, RGBA (or RGB when alpha is
// false), holding one row at a time: a test image whose decoded pixels are far larger than the
// file (a horizontal gradient, which compresses well). It is meant for tests and
// measurements of the decoder's memory.
func WriteLargePNG(path string, w, h, bitDepth int, alpha bool) error {
	if w <= 0 || h <= 0 || bitDepth != 8 && bitDepth != 16 {
		return fmt.Errorf("WriteLargePNG: %dx%d at %d bits: want positive sizes and 8 or 16 bits", w, h, bitDepth)
	}
	channels, colourType := 3, byte(2)
	if alpha {
		channels, colourType = 4, 6
	}
	bps := bitDepth / 8
	row := make([]byte, 1+w*channels*bps) // filter byte 0 (none), then the samples
	for x := range w {
		v := byte(x * 255 / max(w-1, 1))
		for c := range channels * bps {
			row[1+x*channels*bps+c] = v
		}
	}
	var idat bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&idat, zlib.BestSpeed)
	for range h {
		if _, err := zw.Write(row); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	bw.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(bitDepth), colourType
	for _, c := range []struct {
		typ  string
		data []byte
	}{{"IHDR", ihdr}, {"IDAT", idat.Bytes()}, {"IEND", nil}} {
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(c.data)))
		copy(hdr[4:], c.typ)
		bw.Write(hdr[:])
		bw.Write(c.data)
		crc := crc32.NewIEEE()
		crc.Write(hdr[4:])
		crc.Write(c.data)
		var sum [4]byte
		binary.BigEndian.PutUint32(sum[:], crc.Sum32())
		bw.Write(sum[:])
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
