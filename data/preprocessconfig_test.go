package data

import (
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hfCLIP is the preprocessor_config.json of openai/clip-vit-base-patch16 as optimum exports it.
const hfCLIP = `{
  "crop_size": {"height": 224, "width": 224},
  "do_center_crop": true, "do_convert_rgb": true, "do_normalize": true, "do_rescale": true, "do_resize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_processor_type": "CLIPImageProcessor",
  "image_std": [0.26862954, 0.26130258, 0.27577711],
  "resample": 3, "rescale_factor": 0.00392156862745098,
  "size": {"shortest_edge": 224}
}`

func TestPreprocessorFor(t *testing.T) {
	cases := []struct {
		name, file, body string
		size             int
		want             func(*Preprocessor) bool
		err              string
	}{
		{"hf clip", PreprocessorConfigFile, hfCLIP, 224, func(p *Preprocessor) bool {
			return p.Size == 224 && p.resizeTo() == 224 && !p.Squash && p.Mean == CLIPMean && p.Std == CLIPStd
		}, ""},
		{"hf resize 256 crop 224, imagenet stats", PreprocessorConfigFile, `{"size": {"shortest_edge": 256}, "crop_size": 224, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}`, 224, func(p *Preprocessor) bool {
			return p.Size == 224 && p.Resize == 256 && p.Mean == [3]float32{0.485, 0.456, 0.406} && p.Std == [3]float32{0.229, 0.224, 0.225}
		}, ""},
		{"hf squash", PreprocessorConfigFile, `{"size": {"height": 32, "width": 32}, "do_center_crop": false, "do_normalize": false}`, 0, func(p *Preprocessor) bool {
			return p.Size == 32 && p.Squash && p.Mean == [3]float32{} && p.Std == [3]float32{1, 1, 1}
		}, ""},
		{"open_clip", OpenCLIPConfigFile, `{"model_cfg": {"vision_cfg": {"image_size": 336}}, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic", "resize_mode": "shortest"}}`, 336, func(p *Preprocessor) bool {
			return p.Size == 336 && p.Mean == [3]float32{0.5, 0.5, 0.5}
		}, ""},
		{"none: CLIP's constants", "", "", 0, func(p *Preprocessor) bool { return p.Size == DefaultImageSize && p.Mean == CLIPMean }, ""},
		{"size differs from the model", PreprocessorConfigFile, hfCLIP, 336, nil, "crops images to 224 x 224, but the model takes 336 x 336"},
		{"bilinear", PreprocessorConfigFile, `{"size": 224, "crop_size": 224, "resample": 2}`, 0, nil, "resample 2 (bilinear) is not supported"},
		{"crop larger than resize", PreprocessorConfigFile, `{"size": 200, "crop_size": 224}`, 0, nil, "larger than the resized shortest side"},
		{"two means", PreprocessorConfigFile, `{"size": 224, "crop_size": 224, "image_mean": [0.5, 0.5]}`, 0, nil, `"image_mean" has 2 values`},
		{"not square", PreprocessorConfigFile, `{"size": 224, "crop_size": {"height": 224, "width": 192}}`, 0, nil, "square"},
		{"bad json", PreprocessorConfigFile, `{"size": }`, 0, nil, "not a valid image processor configuration"},
		{"open_clip longest", OpenCLIPConfigFile, `{"preprocess_cfg": {"resize_mode": "longest"}}`, 0, nil, `resize_mode "longest"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.file != "" {
				os.WriteFile(filepath.Join(dir, c.file), []byte(c.body), 0o644)
			}
			p, src, err := PreprocessorFor(c.size, "", dir)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || (c.file != "" && !strings.Contains(err.Error(), c.file)) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, c.file, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.want(p) {
				t.Errorf("preprocessor %+v", p)
			}
			if (c.file == "") != (src.File == "") || src.Summary == "" {
				t.Errorf("source %+v", src)
			}
		})
	}
}

// TestEvalImageResizeThenCrop: with Resize > Size the shortest side is resized to Resize and the
// centre Size x Size kept; with Squash the whole image is resized.
func TestEvalImageResizeThenCrop(t *testing.T) {
	// A 40 x 20 image: left half black, right half white, a red border column at x = 0.
	img := image.NewRGBA(image.Rect(0, 0, 40, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 40; x++ {
			c := color.RGBA{0, 0, 0, 255}
			if x >= 20 {
				c = color.RGBA{255, 255, 255, 255}
			}
			if x == 0 {
				c = color.RGBA{255, 0, 0, 255}
			}
			img.Set(x, y, c)
		}
	}
	crop := &Preprocessor{Size: 10, Resize: 20, Mean: CLIPMean, Std: CLIPStd}
	out := crop.EvalImage(img)
	if b := out.Bounds(); b.Dx() != 10 || b.Dy() != 10 {
		t.Fatalf("crop gives %v", b)
	}
	// The centre 10 x 10 of the 40 x 20 image: x 15..24, black then white, no red border.
	if l, r := out.RGBAAt(1, 5), out.RGBAAt(8, 5); l.R > 10 || r.R < 245 {
		t.Errorf("centre crop: left %v right %v", l, r)
	}
	squash := &Preprocessor{Size: 10, Squash: true, Mean: CLIPMean, Std: CLIPStd}
	out = squash.EvalImage(img)
	if b := out.Bounds(); b.Dx() != 10 || b.Dy() != 10 {
		t.Fatalf("squash gives %v", b)
	}
	if edge := out.RGBAAt(0, 5); edge.R < 25 || edge.G > 10 {
		t.Errorf("squash lost the red left border: %v", edge)
	}
}
