package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// Files beside an export that describe its image preprocessing.
const (
	// PreprocessorConfigFile is a Hugging Face image processor's configuration (what optimum
	// exports next to model.onnx).
	PreprocessorConfigFile = "preprocessor_config.json"
	// OpenCLIPConfigFile is open_clip's model configuration; its "preprocess_cfg" holds the
	// preprocessing.
	OpenCLIPConfigFile = "open_clip_config.json"
)

// PreprocessSource says where a Preprocessor's settings came from.
type PreprocessSource struct {
	// File is the configuration file read, or "" for CLIP's constants.
	File string `json:"file,omitempty"`
	// Summary describes the settings in one line.
	Summary string `json:"summary"`
}

// PreprocessorFor returns the preprocessing of an export: read from preprocessor_config.json
// or open_clip_config.json in the first of the folders near that holds one, else CLIP's
// constants. size is the model's input size (0 when the model does not fix it); a
// configuration that crops to another size is refused.
func PreprocessorFor(size int, near ...string) (*Preprocessor, *PreprocessSource, error) {
	for _, dir := range near {
		if dir == "" {
			continue
		}
		for _, name := range []string{PreprocessorConfigFile, OpenCLIPConfigFile} {
			path := filepath.Join(dir, name)
			b, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			var p *Preprocessor
			if name == PreprocessorConfigFile {
				p, err = parseHFImageConfig(b)
			} else {
				p, err = parseOpenCLIPConfig(b)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			if size > 0 && p.Size != size {
				return nil, nil, fmt.Errorf("%s: crops images to %d x %d, but the model takes %d x %d; keep the configuration of this export beside it", path, p.Size, p.Size, size, size)
			}
			return p, &PreprocessSource{File: path, Summary: p.Describe()}, nil
		}
	}
	if size <= 0 {
		size = DefaultImageSize
	}
	p := NewPreprocessor(size)
	return p, &PreprocessSource{Summary: p.Describe() + " (CLIP's constants: no " + PreprocessorConfigFile + " beside the model)"}, nil
}

// Describe says in one line what p does to an image for evaluation.
func (p *Preprocessor) Describe() string {
	var resize string
	switch {
	case p.Squash:
		resize = fmt.Sprintf("resize to %d x %d (bicubic)", p.Size, p.Size)
	default:
		resize = fmt.Sprintf("resize shortest side to %d (bicubic), centre crop %d x %d", p.resizeTo(), p.Size, p.Size)
	}
	return fmt.Sprintf("%s, mean %s, std %s", resize, floats3(p.Mean), floats3(p.Std))
}

func floats3(v [3]float32) string {
	return fmt.Sprintf("[%g, %g, %g]", v[0], v[1], v[2])
}

// sizeField is a Hugging Face size entry: a number, or {"shortest_edge": n}, or
// {"height": h, "width": w}.
type sizeField struct {
	set                        bool
	n, shortest, height, width int
}

func (s *sizeField) UnmarshalJSON(b []byte) error {
	s.set = true
	if string(b) == "null" {
		s.set = false
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err == nil {
		s.n = int(n)
		return nil
	}
	var obj struct {
		Shortest *int `json:"shortest_edge"`
		Height   *int `json:"height"`
		Width    *int `json:"width"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return errors.New(`want a number, {"shortest_edge": n} or {"height": h, "width": w}`)
	}
	if obj.Shortest != nil {
		s.shortest = *obj.Shortest
	}
	if obj.Height != nil {
		s.height = *obj.Height
	}
	if obj.Width != nil {
		s.width = *obj.Width
	}
	return nil
}

// square returns the side of a square size, or an error.
func (s sizeField) square(field string) (int, error) {
	switch {
	case s.n > 0:
		return s.n, nil
	case s.shortest > 0:
		return s.shortest, nil
	case s.height > 0 && s.height == s.width:
		return s.height, nil
	case s.height > 0 || s.width > 0:
		return 0, fmt.Errorf("%s is %d x %d; CLIP exports take square images", field, s.height, s.width)
	}
	return 0, fmt.Errorf("%s gives no size", field)
}

// PIL resampling filters as Hugging Face numbers them.
var pilResample = map[int]string{0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}

// parseHFImageConfig reads a Hugging Face CLIPImageProcessor configuration.
func parseHFImageConfig(b []byte) (*Preprocessor, error) {
	var c struct {
		Size          sizeField  `json:"size"`
		CropSize      sizeField  `json:"crop_size"`
		Mean          *[]float32 `json:"image_mean"`
		Std           *[]float32 `json:"image_std"`
		DoResize      *bool      `json:"do_resize"`
		DoCenterCrop  *bool      `json:"do_center_crop"`
		DoNormalize   *bool      `json:"do_normalize"`
		DoRescale     *bool      `json:"do_rescale"`
		RescaleFactor *float64   `json:"rescale_factor"`
		Resample      *int       `json:"resample"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("not a valid image processor configuration: %w", err)
	}
	yes := func(p *bool) bool { return p == nil || *p }
	if c.Resample != nil && *c.Resample != 3 {
		name := pilResample[*c.Resample]
		if name == "" {
			name = "unknown"
		}
		return nil, fmt.Errorf("resample %d (%s) is not supported; skipgraph resizes with bicubic (3) as CLIP does", *c.Resample, name)
	}
	if !yes(c.DoResize) {
		return nil, errors.New(`"do_resize": false is not supported; images of any size must be resized to the model's input`)
	}
	if !yes(c.DoRescale) || (c.RescaleFactor != nil && math.Abs(*c.RescaleFactor-1.0/255) > 1e-9) {
		return nil, errors.New("only rescaling by 1/255 is supported (do_rescale true, rescale_factor 1/255)")
	}
	p := NewPreprocessor(DefaultImageSize)
	resize, err := c.Size.square(`"size"`)
	if err != nil {
		return nil, err
	}
	if yes(c.DoCenterCrop) {
		if !c.CropSize.set {
			return nil, errors.New(`"do_center_crop" is on but "crop_size" is missing`)
		}
		crop, err := c.CropSize.square(`"crop_size"`)
		if err != nil {
			return nil, err
		}
		if crop > resize {
			return nil, fmt.Errorf(`"crop_size" %d is larger than the resized shortest side %d (padding is not supported)`, crop, resize)
		}
		p.Size, p.Resize = crop, resize
	} else {
		if c.Size.shortest > 0 {
			return nil, errors.New(`"size" {"shortest_edge"} without a centre crop gives images of varying shape; CLIP needs a crop`)
		}
		p.Size, p.Squash = resize, true
	}
	if yes(c.DoNormalize) {
		if err := setChannels(&p.Mean, c.Mean, "image_mean"); err != nil {
			return nil, err
		}
		if err := setChannels(&p.Std, c.Std, "image_std"); err != nil {
			return nil, err
		}
	} else {
		p.Mean, p.Std = [3]float32{}, [3]float32{1, 1, 1}
	}
	return p, p.check()
}

func setChannels(dst *[3]float32, v *[]float32, field string) error {
	if v == nil {
		return nil
	}
	if len(*v) != 3 {
		return fmt.Errorf("%q has %d values; want 3 (R, G, B)", field, len(*v))
	}
	copy(dst[:], *v)
	return nil
}

// parseOpenCLIPConfig reads the "preprocess_cfg" of an open_clip model configuration.
func parseOpenCLIPConfig(b []byte) (*Preprocessor, error) {
	var c struct {
		Model struct {
			Vision struct {
				ImageSize sizeField `json:"image_size"`
			} `json:"vision_cfg"`
		} `json:"model_cfg"`
		Pre *struct {
			Mean          *[]float32 `json:"mean"`
			Std           *[]float32 `json:"std"`
			Size          json.RawMessage
			Interpolation string `json:"interpolation"`
			ResizeMode    string `json:"resize_mode"`
		} `json:"preprocess_cfg"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("not a valid open_clip configuration: %w", err)
	}
	if c.Pre == nil {
		return nil, errors.New(`no "preprocess_cfg"`)
	}
	p := NewPreprocessor(DefaultImageSize)
	size := 0
	if len(c.Pre.Size) > 0 {
		var n int
		var pair []int
		switch {
		case json.Unmarshal(c.Pre.Size, &n) == nil:
			size = n
		case json.Unmarshal(c.Pre.Size, &pair) == nil && len(pair) == 2 && pair[0] == pair[1]:
			size = pair[0]
		default:
			return nil, fmt.Errorf(`"preprocess_cfg" "size" %s is not one square size`, c.Pre.Size)
		}
	} else if s, err := c.Model.Vision.ImageSize.square(`"image_size"`); err == nil {
		size = s
	}
	if size > 0 {
		p.Size = size
	}
	if i := strings.ToLower(c.Pre.Interpolation); i != "" && i != "bicubic" {
		return nil, fmt.Errorf(`interpolation %q is not supported; skipgraph resizes with bicubic`, c.Pre.Interpolation)
	}
	switch c.Pre.ResizeMode {
	case "", "shortest":
	case "squash":
		p.Squash = true
	default:
		return nil, fmt.Errorf(`resize_mode %q is not supported (shortest or squash)`, c.Pre.ResizeMode)
	}
	if err := setChannels(&p.Mean, c.Pre.Mean, "mean"); err != nil {
		return nil, err
	}
	if err := setChannels(&p.Std, c.Pre.Std, "std"); err != nil {
		return nil, err
	}
	return p, p.check()
}
