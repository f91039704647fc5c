package data

import (
	"bufio"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// synthColour is a named class colour of the synthetic data set.
type synthColour struct {
	name string
	rgb  [3]float64
}

var synthColours = []synthColour{
	{"red", [3]float64{215, 40, 40}},
	{"green", [3]float64{40, 175, 60}},
	{"blue", [3]float64{40, 80, 220}},
	{"yellow", [3]float64{230, 205, 40}},
	{"purple", [3]float64{145, 60, 190}},
	{"orange", [3]float64{240, 135, 30}},
	{"cyan", [3]float64{40, 200, 210}},
	{"pink", [3]float64{240, 120, 180}},
}

// synthShapes are the class shapes of the synthetic data set.
var synthShapes = []string{"circle", "square", "triangle", "cross", "horizontal_stripes", "vertical_stripes"}

// MaxSyntheticClasses is the number of distinct classes GenerateDataset
// can make.
const MaxSyntheticClasses = 48 // len(synthColours) * len(synthShapes)

// SyntheticClasses returns the folder names of the first n synthetic
// classes, such as "red_circle". Classes are listed so that the first ones
// differ in both colour and shape.
func SyntheticClasses(n int) []string {
	var out []string
	for d := 0; d < len(synthColours) && len(out) < n; d++ {
		for s := 0; s < len(synthShapes) && len(out) < n; s++ {
			c := (s + d) % len(synthColours)
			out = append(out, synthColours[c].name+"_"+synthShapes[s])
		}
	}
	return out
}

// GenerateDataset writes a synthetic image data set into dir (which must
// be new or empty): one folder of perClass PNG images of size x size pixels
// per class, and a classes.txt. Each class is a colour and a shape or
// stripe pattern ("red circle", "green square", "blue horizontal stripes",
// ...), drawn at a random position and scale with jittered colour on a
// noisy background of random brightness, so images differ but classes stay
// separable by a small model. The same arguments give the same files.
func GenerateDataset(dir string, classes, perClass, size int, seed uint64) error {
	if classes < 1 || classes > MaxSyntheticClasses {
		return fmt.Errorf("synthetic data set: %d classes asked, want 1 to %d", classes, MaxSyntheticClasses)
	}
	if perClass < 1 {
		return fmt.Errorf("synthetic data set: %d images per class asked, want at least 1", perClass)
	}
	if size < 8 || size > 4096 {
		return fmt.Errorf("synthetic data set: image size %d, want 8 to 4096 pixels", size)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s: folder is not empty; give a new folder for the synthetic data set", dir)
	}
	// Everything is written into a temporary folder beside dir and renamed into place at the end,
	// so a failure leaves no half-written data set.
	td, err := safeio.NewTempDir(dir)
	if err != nil {
		return fmt.Errorf("cannot write beside %s: %w", dir, safeio.PathCause(err))
	}
	defer td.Abort()
	final := dir
	dir = td.Path
	names := SyntheticClasses(classes)
	for label, name := range names {
		cdir := filepath.Join(dir, name)
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", cdir, safeio.PathCause(err))
		}
		colour, shape, _ := strings.Cut(name, "_")
		var rgb [3]float64
		for _, c := range synthColours {
			if c.name == colour {
				rgb = c.rgb
			}
		}
		for i := range perClass {
			rng := rand.New(rand.NewPCG(seed, uint64(label)<<32|uint64(i)))
			img := synthImage(rng, size, rgb, shape)
			if err := writePNG(filepath.Join(cdir, fmt.Sprintf("%04d.png", i)), img); err != nil {
				return err
			}
		}
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + "\n")
	}
	path := filepath.Join(dir, ClassesFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	os.Remove(final) // an empty folder given as the destination
	if err := td.Commit(); err != nil {
		return fmt.Errorf("%s: %w", final, safeio.PathCause(err))
	}
	return nil
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	w := bufio.NewWriter(f)
	err = png.Encode(w, img)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func clamp8(v float64) uint8 {
	return uint8(math.Max(0, math.Min(255, math.Round(v))))
}

// synthImage draws one image of a class.
func synthImage(rng *rand.Rand, size int, rgb [3]float64, shape string) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	s := float64(size)
	// Background: a grey of random brightness with a faint tint and noise.
	bg := 90 + rng.Float64()*110
	var tint [3]float64
	for c := range tint {
		tint[c] = bg + rng.NormFloat64()*8
	}
	// Object: random centre and radius, jittered colour.
	r := s * (0.18 + rng.Float64()*0.17)
	cx := r + rng.Float64()*(s-2*r)
	cy := r + rng.Float64()*(s-2*r)
	var fg [3]float64
	for c := range fg {
		fg[c] = rgb[c] + rng.NormFloat64()*12
	}
	period := math.Max(2, r*(0.35+rng.Float64()*0.2))
	for y := range size {
		for x := range size {
			px, py := float64(x)+0.5, float64(y)+0.5
			dx, dy := (px-cx)/r, (py-cy)/r
			in := false
			switch shape {
			case "circle":
				in = dx*dx+dy*dy <= 1
			case "square":
				in = math.Abs(dx) <= 0.85 && math.Abs(dy) <= 0.85
			case "triangle":
				in = dy <= 0.8 && dy >= -1 && math.Abs(dx) <= (dy+1)/1.8*1.0
			case "cross":
				in = (math.Abs(dx) <= 0.3 && math.Abs(dy) <= 1) || (math.Abs(dy) <= 0.3 && math.Abs(dx) <= 1)
			case "horizontal_stripes":
				in = math.Abs(dx) <= 1 && math.Abs(dy) <= 1 && math.Mod(py-cy+10*period, 2*period) < period
			case "vertical_stripes":
				in = math.Abs(dx) <= 1 && math.Abs(dy) <= 1 && math.Mod(px-cx+10*period, 2*period) < period
			}
			o := img.PixOffset(x, y)
			for c := range 3 {
				v := tint[c]
				if in {
					v = fg[c]
				}
				img.Pix[o+c] = clamp8(v + rng.NormFloat64()*10)
			}
			img.Pix[o+3] = 0xff
		}
	}
	return img
}
