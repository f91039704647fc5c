package data

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"io"
	"runtime/debug"
	"sync"
)

// DefaultDecodeMemory is the default budget of image decoding: the bytes that decoded pixels,
// their RGB copies and resampling buffers may hold at once, over all decoder workers of the
// process. An 8-bit RGBA image of W x H pixels costs about 4*W*H bytes (one copy: it is
// converted in place), a 16-bit one 12*W*H, a baseline JPEG 7*W*H, a progressive JPEG 19*W*H;
// an image that alone costs more than the budget is refused with a message that says so.
const DefaultDecodeMemory = 1 << 30

// gcAfter is the size of a release after which the decoder collects the garbage and returns
// the freed memory to the system at once, so that the resident memory follows what the budget
// holds: left to itself, the runtime keeps the pages of a large image resident a while, and
// the next image's come on top.
const gcAfter = 32 << 20

// DecodeBudget bounds the memory image decoding holds at once: a decoder first reads the
// image's header, estimates what decoding and preprocessing it will hold (DecodeCost), waits
// until that fits in the budget, and gives it back when done. The zero value is not usable;
// make one with NewDecodeBudget. It is safe for concurrent use.
type DecodeBudget struct {
	mu         sync.Mutex
	cond       sync.Cond
	limit      int64
	used, peak int64
}

// NewDecodeBudget returns a budget of limit bytes (DefaultDecodeMemory when limit <= 0).
func NewDecodeBudget(limit int64) *DecodeBudget {
	if limit <= 0 {
		limit = DefaultDecodeMemory
	}
	b := &DecodeBudget{limit: limit}
	b.cond.L = &b.mu
	return b
}

var defaultBudget = NewDecodeBudget(DefaultDecodeMemory)

// DefaultDecodeBudget returns the process's shared budget, used by LoadImage and by a
// Preprocessor without its own; SetLimit changes it.
func DefaultDecodeBudget() *DecodeBudget { return defaultBudget }

// Limit returns the budget in bytes.
func (b *DecodeBudget) Limit() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// SetLimit changes the budget (DefaultDecodeMemory when limit <= 0).
func (b *DecodeBudget) SetLimit(limit int64) {
	if limit <= 0 {
		limit = DefaultDecodeMemory
	}
	b.mu.Lock()
	b.limit = limit
	b.mu.Unlock()
	b.cond.Broadcast()
}

// Peak returns the most bytes held at once so far.
func (b *DecodeBudget) Peak() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak
}

// acquire waits until n more bytes fit and takes them; n must not exceed the limit.
func (b *DecodeBudget) acquire(n int64) {
	b.mu.Lock()
	for b.used > 0 && b.used+n > b.limit {
		b.cond.Wait()
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	b.mu.Unlock()
}

// release gives n bytes back. The caller must hold no reference to what they paid for.
func (b *DecodeBudget) release(n int64) {
	if n >= gcAfter {
		debug.FreeOSMemory()
	}
	b.giveBack(n)
}

// giveBack returns n bytes to the budget without collecting the garbage: for bytes whose
// memory lives on with a new owner (a decoded batch handed to its consumer).
func (b *DecodeBudget) giveBack(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// ImageHeader is what an image file's header says about its decoding.
type ImageHeader struct {
	image.Config
	// Format is "png" or "jpeg".
	Format string
	// Interlaced is set for an Adam7 PNG, Progressive for a progressive JPEG.
	Interlaced, Progressive bool
}

// ReadImageHeader reads the header of a PNG or JPEG image from r, which it leaves at an
// unspecified position.
func ReadImageHeader(r io.Reader) (*ImageHeader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(64 << 10)
	cfg, format, err := image.DecodeConfig(br)
	if err != nil {
		return nil, err
	}
	h := &ImageHeader{Config: cfg, Format: format}
	switch format {
	case "png":
		// signature (8), IHDR length and type (8), width, height, depth, colour type,
		// compression, filter, interlace
		h.Interlaced = len(head) > 28 && head[28] == 1
	case "jpeg":
		h.Progressive = jpegProgressive(head)
	}
	return h, nil
}

// jpegProgressive reports whether the frame header among the first bytes of a JPEG file is a
// progressive one (SOF2, SOF6, SOF10, SOF14). A header beyond those bytes counts as
// progressive: the estimate errs on the large side.
func jpegProgressive(b []byte) bool {
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return true
		}
		m := b[i+1]
		switch {
		case m == 0xff: // fill byte
			i++
			continue
		case m == 0xc2 || m == 0xc6 || m == 0xca || m == 0xce:
			return true
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			return false
		case m == 0x01 || m >= 0xd0 && m <= 0xd7:
			i += 2
			continue
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	return true
}

// DecodeCost estimates the bytes that decoding an image with this header and preprocessing it
// to a size x size input hold at once: the decoded pixels (twice for an interlaced PNG, plus
// the coefficients of a progressive JPEG), the RGB copy (none for 8-bit RGBA, converted in
// place), and the resampling buffers of a crop that spans the whole image.
func (h *ImageHeader) DecodeCost(size int) int64 {
	w, hh := int64(h.Width), int64(h.Height)
	px := w * hh
	var bpp, comps int64
	switch h.ColorModel {
	case color.GrayModel:
		bpp, comps = 1, 1
	case color.Gray16Model:
		bpp, comps = 2, 1
	case color.RGBAModel, color.NRGBAModel:
		bpp, comps = 4, 3
	case color.RGBA64Model, color.NRGBA64Model:
		bpp, comps = 8, 3
	case color.YCbCrModel:
		bpp, comps = 3, 3
	case color.CMYKModel:
		bpp, comps = 4, 4
	default:
		if _, ok := h.ColorModel.(color.Palette); ok {
			bpp, comps = 1, 1
		} else {
			bpp, comps = 8, 4
		}
	}
	cost := px * bpp
	if h.Interlaced {
		cost *= 2 // the passes, then the image they are merged into
	}
	if h.Progressive {
		cost += px * comps * 4 // one int32 coefficient per pixel and component
	}
	if h.ColorModel != color.RGBAModel && h.ColorModel != color.NRGBAModel {
		cost += px * 4 // the RGB copy
	}
	s := int64(size)
	cost += 4*s*hh + 4*s*s // horizontal pass (window columns x rows read), output
	cost += 16*(w+hh) + 64*s + 1<<20
	return cost
}

// errTooBig says that an image alone costs more than the budget.
func errTooBig(path string, h *ImageHeader, cost, limit int64) error {
	kind := h.Format
	if h.Interlaced {
		kind = "interlaced " + kind
	}
	if h.Progressive {
		kind = "progressive " + kind
	}
	if h.ColorModel == color.RGBA64Model || h.ColorModel == color.NRGBA64Model || h.ColorModel == color.Gray16Model {
		kind = "16-bit " + kind
	}
	return fmt.Errorf("%s: decoding this %dx%d %s needs about %s, more than the image-decoding budget of %s; downscale the image (to 4096 pixels on its long side, say) or raise --decode-memory",
		path, h.Width, h.Height, kind, mib(cost), mib(limit))
}

func mib(n int64) string {
	if n >= 10<<30 {
		return fmt.Sprintf("%.0f GiB", float64(n)/(1<<30))
	}
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", (n+(1<<20)-1)>>20)
}
