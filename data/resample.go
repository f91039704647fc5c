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
// axis of inSize pixels onto outSize pixels.
func resampleCoeffs(inSize int, in0, in1 float64, outSize int) coeffs {
	scale := (in1 - in0) / float64(outSize)
	filterScale := max(scale, 1)
	support := 2 * filterScale
	c := coeffs{start: make([]int, outSize), w: make([][]int32, outSize)}
	k := make([]float64, int(math.Ceil(support))*2+1)
	for xx := range outSize {
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
		c.start[xx], c.w[xx] = xmin, ws
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
// pixels as PIL resizes a cropped image: pixels outside sr are not read.
func resizeBicubic(src *image.RGBA, sr image.Rectangle, dw, dh int) *image.RGBA {
	sw, sh := sr.Dx(), sr.Dy()
	// tmp holds the rows of sr with dw columns.
	tmp := image.NewRGBA(image.Rect(0, 0, dw, sh))
	if dw == sw {
		for y := range sh {
			copy(tmp.Pix[y*tmp.Stride:y*tmp.Stride+4*dw], src.Pix[src.PixOffset(sr.Min.X, sr.Min.Y+y):])
		}
	} else {
		cx := resampleCoeffs(sw, 0, float64(sw), dw)
		for y := range sh {
			in := src.Pix[src.PixOffset(sr.Min.X, sr.Min.Y+y):]
			out := tmp.Pix[y*tmp.Stride:]
			for x := range dw {
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
	cy := resampleCoeffs(sh, 0, float64(sh), dh)
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := range dh {
		o := out.Pix[y*out.Stride:]
		ws := cy.w[y]
		for x := range dw {
			s0, s1, s2 := int64(1<<(resamplePrecision-1)), int64(1<<(resamplePrecision-1)), int64(1<<(resamplePrecision-1))
			off := cy.start[y]*tmp.Stride + 4*x
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
