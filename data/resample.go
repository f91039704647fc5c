package data

import (
	"image"
	"math"
)

// The resampler below follows PIL's bicubic resize (Image.resize with
// Image.BICUBIC, which CLIP's and torchvision's transforms call): the same
// cubic kernel (a = -0.5), pixel-centre convention, support widened by the
// scale factor when shrinking, border weights renormalised, 22-bit
// fixed-point weights, a horizontal pass then a vertical pass, with 8-bit
// rounding and clipping in between. It was written from that description;
// testdata/preprocess_reference.json checks it against PIL.

const resamplePrecision = 32 - 8 - 2

func bicubic(x float64) float64 {
	const a = -0.5
	x = math.Abs(x)
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// coeffs holds, for each output position, the first input index and the
// fixed-point weights of the inputs it reads.
type coeffs struct {
	start []int
	w     [][]int32
}

// resampleCoeffs computes the weights mapping input range [in0, in1) of an
// axis of inSize pixels onto outSize pixels, for the output positions
// [from, to) only (index 0 of the result is position from).
func resampleCoeffs(inSize int, in0, in1 float64, outSize, from, to int) coeffs {
	scale := (in1 - in0) / float64(outSize)
	filterScale := max(scale, 1)
	support := 2 * filterScale
	c := coeffs{start: make([]int, to-from), w: make([][]int32, to-from)}
	k := make([]float64, int(math.Ceil(support))*2+1)
	for xx := from; xx < to; xx++ {
		center := in0 + (float64(xx)+0.5)*scale
		ss := 1 / filterScale
		// C's (int) cast truncates toward zero.
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		xmax = max(min(xmax, len(k)), 0)
		total := 0.0
		for x := range xmax {
			w := bicubic((float64(x+xmin) - center + 0.5) * ss)
			k[x] = w
			total += w
		}
		ws := make([]int32, xmax)
		for x := range xmax {
			v := k[x]
			if total != 0 {
				v /= total
			}
			if v < 0 {
				ws[x] = int32(v*(1<<resamplePrecision) - 0.5)
			} else {
				ws[x] = int32(v*(1<<resamplePrecision) + 0.5)
			}
		}
		c.start[xx-from], c.w[xx-from] = xmin, ws
	}
	return c
}

func clip8(v int64) uint8 {
	if v >= 1<<resamplePrecision<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> resamplePrecision)
}

// resizeBicubic resizes the part sr of an opaque RGBA image to dw x dh
// pixels as PIL resizes a cropped image (pixels outside sr are not read),
// and returns the window win of the result (at (0, 0)). Only the window is
// computed, and of the horizontal pass only the rows the window reads, so
// memory follows the window, not the resized size: a centre crop of a
// very long image costs no more than one of a square one.
func resizeBicubic(src *image.RGBA, sr image.Rectangle, dw, dh int, win image.Rectangle) *image.RGBA {
	sw, sh := sr.Dx(), sr.Dy()
	ww, wh := win.Dx(), win.Dy()
	// The input rows the window's output rows read.
	cy := resampleCoeffs(sh, 0, float64(sh), dh, win.Min.Y, win.Max.Y)
	y0, y1 := sh, 0
	for i := range wh {
		y0 = min(y0, cy.start[i])
		y1 = max(y1, cy.start[i]+len(cy.w[i]))
	}
	if dh == sh {
		y0, y1 = win.Min.Y, win.Max.Y
	}
	y1 = max(y1, y0)
	// tmp holds rows y0..y1 of sr with the window's columns.
	tmp := image.NewRGBA(image.Rect(0, 0, ww, y1-y0))
	if dw == sw {
		for y := y0; y < y1; y++ {
			copy(tmp.Pix[(y-y0)*tmp.Stride:(y-y0)*tmp.Stride+4*ww], src.Pix[src.PixOffset(sr.Min.X+win.Min.X, sr.Min.Y+y):])
		}
	} else {
		cx := resampleCoeffs(sw, 0, float64(sw), dw, win.Min.X, win.Max.X)
		for y := y0; y < y1; y++ {
			in := src.Pix[src.PixOffset(sr.Min.X, sr.Min.Y+y):]
			out := tmp.Pix[(y-y0)*tmp.Stride:]
			for x := range ww {
				s0, s1, s2 := int64(1<<(resamplePrecision-1)), int64(1<<(resamplePrecision-1)), int64(1<<(resamplePrecision-1))
				p := in[cx.start[x]*4:]
				for j, w := range cx.w[x] {
					s0 += int64(p[4*j]) * int64(w)
					s1 += int64(p[4*j+1]) * int64(w)
					s2 += int64(p[4*j+2]) * int64(w)
				}
				out[4*x], out[4*x+1], out[4*x+2], out[4*x+3] = clip8(s0), clip8(s1), clip8(s2), 255
			}
		}
	}
	if dh == sh {
		return tmp
	}
	out := image.NewRGBA(image.Rect(0, 0, ww, wh))
	for y := range wh {
		o := out.Pix[y*out.Stride:]
		ws := cy.w[y]
		for x := range ww {
			s0, s1, s2 := int64(1<<(resamplePrecision-1)), int64(1<<(resamplePrecision-1)), int64(1<<(resamplePrecision-1))
			off := (cy.start[y]-y0)*tmp.Stride + 4*x
			for j, w := range ws {
				p := tmp.Pix[off+j*tmp.Stride:]
				s0 += int64(p[0]) * int64(w)
				s1 += int64(p[1]) * int64(w)
				s2 += int64(p[2]) * int64(w)
			}
			o[4*x], o[4*x+1], o[4*x+2], o[4*x+3] = clip8(s0), clip8(s1), clip8(s2), 255
		}
	}
	return out
}
