package data

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // JPEG decoding
	_ "image/png"  // PNG decoding
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// CLIPMean is the per-channel (R, G, B) mean CLIP normalises with.
var CLIPMean = [3]float32{0.48145466, 0.4578275, 0.40821073}

// CLIPStd is the per-channel (R, G, B) standard deviation CLIP normalises
// with.
var CLIPStd = [3]float32{0.26862954, 0.26130258, 0.27577711}

// DefaultImageSize is the input size of ViT-B/16 and ViT-B/32 CLIP models.
const DefaultImageSize = 224

// MaxImagePixels bounds the images LoadImage decodes, so that a corrupt or
// hostile header cannot exhaust memory.
const MaxImagePixels = 128 << 20

// LoadImage decodes a JPEG or PNG file into an opaque RGB image, within the process's
// decoding budget (DefaultDecodeBudget) while it decodes; the image returned is then the
// caller's. Errors name the file.
func LoadImage(path string) (*image.RGBA, error) {
	var out *image.RGBA
	err := DefaultDecodeBudget().decode(path, DefaultImageSize, func(img *image.RGBA) error {
		out = img
		return nil
	})
	return out, err
}

// decode opens path, reads its header, refuses an image that alone costs more than the
// budget, waits until its cost fits, decodes it into an opaque RGB image and calls use with
// it; the cost is held until use returns. size is the preprocessed input size (resampling
// buffers count too).
func (b *DecodeBudget) decode(path string, size int, use func(*image.RGBA) error) error {
	f, err := safeio.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	defer f.Close()
	h, err := ReadImageHeader(f)
	if err != nil {
		return decodeError(path, "", err)
	}
	switch w, ht := int64(h.Width), int64(h.Height); {
	case w <= 0 || ht <= 0:
		return fmt.Errorf("%s: image is empty (%dx%d); remove the file", path, w, ht)
	case w*ht > MaxImagePixels:
		return fmt.Errorf("%s: image is %dx%d pixels, more than the %d-megapixel limit; downscale it", path, w, ht, MaxImagePixels>>20)
	}
	cost := h.DecodeCost(size)
	if limit := b.Limit(); cost > limit {
		return errTooBig(path, h, cost, limit)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b.acquire(cost)
	err = decodeAndUse(f, path, use)
	b.release(cost)
	return err
}

// decodeAndUse decodes the image in r and calls use with it; nothing of it stays referenced
// when it returns.
func decodeAndUse(r io.Reader, path string, use func(*image.RGBA) error) error {
	img, format, err := image.Decode(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return decodeError(path, format, err)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return fmt.Errorf("%s: image is empty (%dx%d); remove the file", path, b.Dx(), b.Dy())
	}
	return use(toRGBOwned(img))
}

func decodeError(path, format string, err error) error {
	if errors.Is(err, image.ErrFormat) {
		return fmt.Errorf("%s: not a JPEG or PNG image; remove or replace the file", path)
	}
	return fmt.Errorf("%s: corrupt %s image (%w); remove or replace the file", path, formatName(format), err)
}

// toRGBOwned is ToRGB for an image nobody else holds: 8-bit RGBA images are converted in
// place, without a second copy.
func toRGBOwned(img image.Image) *image.RGBA {
	switch src := img.(type) {
	case *image.NRGBA:
		if src.Rect.Min == (image.Point{}) {
			for i := 3; i < len(src.Pix); i += 4 {
				src.Pix[i] = 0xff
			}
			return &image.RGBA{Pix: src.Pix, Stride: src.Stride, Rect: src.Rect}
		}
	case *image.RGBA:
		if src.Rect.Min == (image.Point{}) {
			p := src.Pix
			for i := 0; i+3 < len(p); i += 4 {
				if a := p[i+3]; a != 0xff {
					c := color.NRGBAModel.Convert(color.RGBA{p[i], p[i+1], p[i+2], a}).(color.NRGBA)
					p[i], p[i+1], p[i+2], p[i+3] = c.R, c.G, c.B, 0xff
				}
			}
			return src
		}
	}
	return ToRGB(img)
}

func formatName(f string) string {
	if f == "" {
		return "image"
	}
	return f
}

// ToRGB converts any image to an opaque RGB image with bounds starting at
// (0, 0). Gray and paletted images are expanded; alpha is dropped without
// compositing (the colour channels are kept un-premultiplied), as PIL's
// convert("RGB") does.
func ToRGB(img image.Image) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	switch src := img.(type) {
	case *image.RGBA:
		// Premultiplied; opaque images (the usual case) copy as they are.
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				c := color.NRGBAModel.Convert(color.RGBA{row[4*x], row[4*x+1], row[4*x+2], row[4*x+3]}).(color.NRGBA)
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = c.R, c.G, c.B, 0xff
			}
		}
	case *image.NRGBA:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = row[4*x], row[4*x+1], row[4*x+2], 0xff
			}
		}
	case *image.Gray:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				v := row[x]
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = v, v, v, 0xff
			}
		}
	case *image.YCbCr:
		for y := range h {
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				c := src.YCbCrAt(b.Min.X+x, b.Min.Y+y)
				r, g, bb := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = r, g, bb, 0xff
			}
		}
	case *image.NRGBA64:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				// the high byte of each 16-bit big-endian sample
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = row[8*x], row[8*x+2], row[8*x+4], 0xff
			}
		}
	case *image.Gray16:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				v := row[2*x]
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = v, v, v, 0xff
			}
		}
	case *image.RGBA64:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				q := row[8*x:]
				r, g, bl, a := uint32(q[0])<<8|uint32(q[1]), uint32(q[2])<<8|uint32(q[3]), uint32(q[4])<<8|uint32(q[5]), uint32(q[6])<<8|uint32(q[7])
				switch a {
				case 0xffff:
				case 0:
					r, g, bl = 0, 0, 0
				default: // un-premultiply, as color.NRGBA64Model does
					r, g, bl = r*0xffff/a, g*0xffff/a, bl*0xffff/a
				}
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = uint8(r>>8), uint8(g>>8), uint8(bl>>8), 0xff
			}
		}
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range src.Palette {
			n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
			lut[i] = [3]uint8{uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)}
		}
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				c := lut[row[x]]
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = c[0], c[1], c[2], 0xff
			}
		}
	default:
		// CMYK, ...: go through non-premultiplied colour.
		for y := range h {
			dst := out.Pix[y*out.Stride:]
			for x := range w {
				c := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				dst[4*x], dst[4*x+1], dst[4*x+2], dst[4*x+3] = uint8(c.R>>8), uint8(c.G>>8), uint8(c.B>>8), 0xff
			}
		}
	}
	return out
}

// Preprocessor turns RGB images into CLIP's normalised float32 CHW input.
//
// Evaluation (and training without augmentation) follows CLIP's transform:
// resize the shortest side to Size with bicubic interpolation, centre crop
// Size x Size, divide by 255, normalise with Mean and Std. Training with
// Augment follows torchvision's RandomResizedCrop(Size, Scale, Ratio,
// bicubic) then RandomHorizontalFlip(FlipProb), as the Skip Tuning
// reference code does.
//
// Bicubic interpolation reproduces PIL's Image.resize(BICUBIC), fixed-point
// arithmetic and 8-bit intermediate included, so resized pixels match PIL's
// (testdata/preprocess_reference.json). Remaining differences come from
// decoding: Go's image/jpeg and libjpeg differ by a few grey levels
// (chroma upsampling, IDCT rounding), PNG decodes identically.
type Preprocessor struct {
	// Size is the model's square input size (224 for ViT-B/16).
	Size int
	// Resize is the length the shortest side is resized to before the centre crop (0: Size).
	Resize int
	// Squash resizes the whole image to Size x Size, ignoring its aspect ratio, instead of
	// resizing the shortest side and cropping.
	Squash bool
	// Mean and Std normalise each channel after division by 255.
	Mean, Std [3]float32
	// Augment turns on the training augmentation.
	Augment bool
	// Scale is RandomResizedCrop's range of crop area fractions.
	Scale [2]float64
	// Ratio is RandomResizedCrop's range of crop aspect ratios (w/h).
	Ratio [2]float64
	// FlipProb is the probability of a horizontal flip.
	FlipProb float64
	// Workers bounds the images decoded at once by Batch (0: GOMAXPROCS).
	Workers int
	// Budget bounds the memory the workers' decoding holds at once, whatever their number
	// (nil: the process's DefaultDecodeBudget).
	Budget *DecodeBudget
}

// NewPreprocessor returns CLIP's evaluation preprocessing for the given
// input size with the paper's augmentation parameters ready (set Augment
// to use them).
func NewPreprocessor(size int) *Preprocessor {
	return &Preprocessor{
		Size:     size,
		Mean:     CLIPMean,
		Std:      CLIPStd,
		Scale:    [2]float64{0.08, 1},
		Ratio:    [2]float64{3.0 / 4.0, 4.0 / 3.0},
		FlipProb: 0.5,
	}
}

// ImageLen returns the number of floats in one preprocessed image.
func (p *Preprocessor) ImageLen() int { return 3 * p.Size * p.Size }

func (p *Preprocessor) check() error {
	if p.Size <= 0 || p.Size > 1<<14 {
		return fmt.Errorf("image size %d is out of range; want a positive input size such as 224", p.Size)
	}
	if p.Resize != 0 && (p.Resize < p.Size || p.Resize > 1<<14) {
		return fmt.Errorf("resize %d is out of range; want the crop size %d or more", p.Resize, p.Size)
	}
	for c := range 3 {
		if p.Std[c] == 0 {
			return fmt.Errorf("std of channel %d is 0; use CLIPStd", c)
		}
	}
	return nil
}

// ResizeShortCrop returns the rectangle, in the coordinates of the image
// resized so its shortest side is size, that the centre crop keeps, and
// the resized width and height (torchvision's Resize(size) then
// CenterCrop(size) arithmetic, including Python's round-half-to-even).
func ResizeShortCrop(w, h, size int) (resizedW, resizedH int, crop image.Rectangle) {
	if w <= h {
		resizedW, resizedH = size, int(float64(size)*float64(h)/float64(w))
	} else {
		resizedW, resizedH = int(float64(size)*float64(w)/float64(h)), size
	}
	top := int(math.RoundToEven(float64(resizedH-size) / 2))
	left := int(math.RoundToEven(float64(resizedW-size) / 2))
	return resizedW, resizedH, image.Rect(left, top, left+size, top+size)
}

// resizeTo is the shortest side's length before the centre crop.
func (p *Preprocessor) resizeTo() int {
	if p.Resize > 0 {
		return p.Resize
	}
	return p.Size
}

// EvalImage resizes and centre-crops img into a Size x Size image (or, with Squash, resizes
// it to Size x Size).
func (p *Preprocessor) EvalImage(img image.Image) *image.RGBA {
	src := asRGB(img)
	b := src.Bounds()
	if p.Squash {
		return resizeBicubic(src, b, p.Size, p.Size, image.Rect(0, 0, p.Size, p.Size))
	}
	rw, rh, crop := ResizeShortCrop(b.Dx(), b.Dy(), p.resizeTo())
	if p.resizeTo() != p.Size {
		top := int(math.RoundToEven(float64(rh-p.Size) / 2))
		left := int(math.RoundToEven(float64(rw-p.Size) / 2))
		crop = image.Rect(left, top, left+p.Size, top+p.Size)
	}
	return resizeBicubic(src, b, rw, rh, crop)
}

// asRGB returns img as an opaque RGBA image with bounds at (0, 0),
// converting only when needed.
func asRGB(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok && r.Rect.Min == (image.Point{}) && r.Opaque() {
		return r
	}
	return ToRGB(img)
}

// RandomResizedCrop picks a crop rectangle of a w x h image as torchvision
// does: up to 10 tries of an area fraction uniform in scale and a
// log-uniform aspect ratio in ratio, else a centre crop clamped to ratio.
func RandomResizedCrop(w, h int, scale, ratio [2]float64, rng *rand.Rand) image.Rectangle {
	area := float64(w * h)
	logLo, logHi := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		target := area * (scale[0] + rng.Float64()*(scale[1]-scale[0]))
		ar := math.Exp(logLo + rng.Float64()*(logHi-logLo))
		cw := int(math.RoundToEven(math.Sqrt(target * ar)))
		ch := int(math.RoundToEven(math.Sqrt(target / ar)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			top := rng.IntN(h - ch + 1)
			left := rng.IntN(w - cw + 1)
			return image.Rect(left, top, left+cw, top+ch)
		}
	}
	in := float64(w) / float64(h)
	cw, ch := w, h
	switch {
	case in < min(ratio[0], ratio[1]):
		ch = int(math.RoundToEven(float64(cw) / min(ratio[0], ratio[1])))
	case in > max(ratio[0], ratio[1]):
		cw = int(math.RoundToEven(float64(ch) * max(ratio[0], ratio[1])))
	}
	top, left := (h-ch)/2, (w-cw)/2
	return image.Rect(left, top, left+cw, top+ch)
}

// TrainImage applies the training augmentation to img: a random resized
// crop to Size x Size and a random horizontal flip.
func (p *Preprocessor) TrainImage(img image.Image, rng *rand.Rand) *image.RGBA {
	src := asRGB(img)
	b := src.Bounds()
	crop := RandomResizedCrop(b.Dx(), b.Dy(), p.Scale, p.Ratio, rng)
	dst := resizeBicubic(src, crop, p.Size, p.Size, image.Rect(0, 0, p.Size, p.Size))
	if rng.Float64() < p.FlipProb {
		flipH(dst)
	}
	return dst
}

func flipH(img *image.RGBA) {
	w := img.Bounds().Dx()
	for y := range img.Bounds().Dy() {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for l, r := 0, w-1; l < r; l, r = l+1, r-1 {
			for c := range 4 {
				row[4*l+c], row[4*r+c] = row[4*r+c], row[4*l+c]
			}
		}
	}
}

// Normalize writes a Size x Size RGB image into dst (length ImageLen) as
// CHW floats: value/255, minus Mean, divided by Std.
func (p *Preprocessor) Normalize(img *image.RGBA, dst []float32) {
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - p.Mean[c]) / p.Std[c]
		}
	}
	s := p.Size
	plane := s * s
	for y := range s {
		row := img.Pix[y*img.Stride:]
		for x := range s {
			i := y*s + x
			dst[i] = lut[0][row[4*x]]
			dst[plane+i] = lut[1][row[4*x+1]]
			dst[2*plane+i] = lut[2][row[4*x+2]]
		}
	}
}

// Image preprocesses one image into dst (length ImageLen). With Augment
// set, rng drives the augmentation and must not be nil.
func (p *Preprocessor) Image(img image.Image, rng *rand.Rand, dst []float32) error {
	if err := p.check(); err != nil {
		return err
	}
	if len(dst) != p.ImageLen() {
		return fmt.Errorf("destination has %d floats, want %d (3x%dx%d)", len(dst), p.ImageLen(), p.Size, p.Size)
	}
	var out *image.RGBA
	if p.Augment {
		if rng == nil {
			return errors.New("augmentation needs a random source; pass a *rand.Rand")
		}
		out = p.TrainImage(img, rng)
	} else {
		out = p.EvalImage(img)
	}
	p.Normalize(out, dst)
	return nil
}

// budget returns the decoding budget Batch works within.
func (p *Preprocessor) budget() *DecodeBudget {
	if p.Budget != nil {
		return p.Budget
	}
	return DefaultDecodeBudget()
}

// Batch loads and preprocesses the images at paths into one contiguous
// []float32 of shape [len(paths), 3, Size, Size]. Images are decoded in
// parallel, by Workers goroutines within the memory Budget; with Augment set, each image's random source is seeded from
// rng in path order first, so the result depends only on rng's state.
// The first error names its file.
func (p *Preprocessor) Batch(paths []string, rng *rand.Rand) ([]float32, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.Augment && rng == nil {
		return nil, errors.New("augmentation needs a random source; pass a *rand.Rand")
	}
	n := p.ImageLen()
	out := make([]float32, len(paths)*n)
	seeds := make([][2]uint64, len(paths))
	if p.Augment {
		for i := range seeds {
			seeds[i] = [2]uint64{rng.Uint64(), rng.Uint64()}
		}
	}
	workers := p.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	budget := p.budget()
	for range min(workers, len(paths)) {
		wg.Go(func() {
			for i := range next {
				var r *rand.Rand
				if p.Augment {
					r = rand.New(rand.NewPCG(seeds[i][0], seeds[i][1]))
				}
				errs[i] = budget.decode(paths[i], p.Size, func(img *image.RGBA) error {
					return p.Image(img, r, out[i*n:(i+1)*n])
				})
			}
		})
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
