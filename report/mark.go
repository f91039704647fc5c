package report

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// The figures skipgraph writes carry a mark, so that a later run replaces its own figure and
// nothing else: a PNG tEXt chunk with the keyword Software, and a leading SVG comment.
const (
	pngSoftware = "Software\x00skipgraph"
	svgMark     = "<!-- Software: skipgraph -->\n"
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// SVGPath is the path of the SVG figure written beside the PNG at pngPath.
func SVGPath(pngPath string) string {
	return strings.TrimSuffix(pngPath, filepath.Ext(pngPath)) + ".svg"
}

// markPNG inserts the tEXt chunk pngSoftware after the IHDR chunk of an encoded PNG.
func markPNG(p []byte) []byte {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, then IHDR: length, type, data, CRC
	if len(p) < ihdrEnd || !bytes.HasPrefix(p, pngSignature) {
		return p
	}
	chunk := make([]byte, 0, 12+len(pngSoftware))
	chunk = binary.BigEndian.AppendUint32(chunk, uint32(len(pngSoftware)))
	chunk = append(chunk, "tEXt"+pngSoftware...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	out := make([]byte, 0, len(p)+len(chunk))
	out = append(out, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

// markSVG puts svgMark after the XML declaration of an SVG document (or first, without one).
func markSVG(s []byte) []byte {
	at := 0
	if bytes.HasPrefix(s, []byte("<?xml")) {
		if i := bytes.IndexByte(s, '\n'); i >= 0 {
			at = i + 1
		}
	}
	out := make([]byte, 0, len(s)+len(svgMark))
	out = append(out, s[:at]...)
	out = append(out, svgMark...)
	return append(out, s[at:]...)
}

// RecognisePNG returns nil when path is a PNG figure that skipgraph wrote (a plot or a
// confusion matrix), else why not.
func RecognisePNG(path string) error {
	head, err := readHead(path, len(pngSignature)+25+12+len(pngSoftware))
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(head, pngSignature) {
		return errors.New("not a PNG file")
	}
	if !bytes.Contains(head, []byte("tEXt"+pngSoftware)) {
		return errors.New("a PNG file that skipgraph did not write")
	}
	return nil
}

// RecogniseSVG returns nil when path is an SVG figure that skipgraph wrote, else why not.
func RecogniseSVG(path string) error {
	head, err := readHead(path, 256)
	if err != nil {
		return err
	}
	if !bytes.Contains(head, []byte(svgMark)) {
		return errors.New("a file that skipgraph did not write")
	}
	return nil
}

// readHead reads up to n bytes from the start of the regular file at path.
func readHead(path string, n int) ([]byte, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, safeio.PathCause(err)
	}
	defer f.Close()
	head := make([]byte, n)
	k, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return head[:k], nil
}
