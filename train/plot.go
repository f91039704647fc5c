package train

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grey  = color.RGBA{225, 225, 225, 255}
	blue  = color.RGBA{31, 119, 180, 255}
	red   = color.RGBA{214, 39, 40, 255}
	green = color.RGBA{44, 160, 44, 255}
)

func nan() float64 { return math.NaN() }

// series is one line of a chart.
type series struct {
	name string
	x, y []float64
	c    color.RGBA
}

// PlotMetrics draws the loss and accuracy curves of a metrics.jsonl file into a PNG: the loss
// per step (and per epoch) on the left, the training and validation accuracy per epoch on the
// right. The PNG is written to a temporary file and renamed.
func PlotMetrics(metricsPath, pngPath string) error {
	f, err := safeio.Open(metricsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	var stepLoss, epochLoss, trainAcc, valAcc series
	stepLoss = series{name: "loss (step)", c: color.RGBA{160, 190, 225, 255}}
	epochLoss = series{name: "loss (epoch)", c: blue}
	trainAcc = series{name: "train acc", c: red}
	valAcc = series{name: "val acc", c: green}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r struct {
			Type   string   `json:"type"`
			Epoch  int      `json:"epoch"`
			Step   float64  `json:"step"`
			Loss   *float64 `json:"loss"`
			Acc    *float64 `json:"acc"`
			ValAcc *float64 `json:"val_acc"`
		}
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Loss == nil {
			continue
		}
		switch r.Type {
		case "step":
			stepLoss.x = append(stepLoss.x, r.Step)
			stepLoss.y = append(stepLoss.y, *r.Loss)
		case "epoch":
			epochLoss.x = append(epochLoss.x, r.Step)
			epochLoss.y = append(epochLoss.y, *r.Loss)
			if r.Acc != nil {
				trainAcc.x = append(trainAcc.x, float64(r.Epoch))
				trainAcc.y = append(trainAcc.y, 100**r.Acc)
			}
			if r.ValAcc != nil {
				valAcc.x = append(valAcc.x, float64(r.Epoch))
				valAcc.y = append(valAcc.y, 100**r.ValAcc)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	const w, h = 1000, 400
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Rect, white)
	chart(img, image.Rect(0, 0, w/2, h), "loss", "step", []series{stepLoss, epochLoss}, false)
	chart(img, image.Rect(w/2, 0, w, h), "accuracy %", "epoch", []series{trainAcc, valAcc}, true)
	return savePNG(pngPath, img)
}

// chart draws a line chart with axes, ticks and a legend into r of img.
func chart(img *image.RGBA, r image.Rectangle, title, xlabel string, ss []series, percent bool) {
	plot := image.Rect(r.Min.X+70, r.Min.Y+40, r.Max.X-20, r.Max.Y-50)
	drawText(img, r.Min.X+(r.Dx()-textWidth(title, 2))/2, r.Min.Y+10, title, 2, black)
	drawText(img, plot.Min.X+(plot.Dx()-textWidth(xlabel, 1))/2, plot.Max.Y+30, xlabel, 1, black)
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for i := range s.x {
			if math.IsNaN(s.y[i]) || math.IsInf(s.y[i], 0) {
				continue
			}
			x0, x1 = math.Min(x0, s.x[i]), math.Max(x1, s.x[i])
			y0, y1 = math.Min(y0, s.y[i]), math.Max(y1, s.y[i])
		}
	}
	if math.IsInf(x0, 1) {
		x0, x1, y0, y1 = 0, 1, 0, 1
	}
	if percent {
		y0, y1 = 0, 100
	} else {
		y0 = math.Min(y0, 0)
		y1 *= 1.05
	}
	if x1 <= x0 {
		x1 = x0 + 1
	}
	if y1 <= y0 {
		y1 = y0 + 1
	}
	px := func(x float64) int { return plot.Min.X + int(math.Round((x-x0)/(x1-x0)*float64(plot.Dx()))) }
	py := func(y float64) int { return plot.Max.Y - int(math.Round((y-y0)/(y1-y0)*float64(plot.Dy()))) }
	for _, t := range ticks(y0, y1, 5) {
		y := py(t)
		hline(img, plot.Min.X, plot.Max.X, y, grey)
		lab := fmtTick(t)
		drawText(img, plot.Min.X-8-textWidth(lab, 1), y-3, lab, 1, black)
	}
	for _, t := range ticks(x0, x1, 6) {
		x := px(t)
		vline(img, x, plot.Max.Y, plot.Max.Y+5, black)
		lab := fmtTick(t)
		drawText(img, x-textWidth(lab, 1)/2, plot.Max.Y+10, lab, 1, black)
	}
	hline(img, plot.Min.X, plot.Max.X, plot.Max.Y, black)
	vline(img, plot.Min.X, plot.Min.Y, plot.Max.Y, black)
	ly := plot.Min.Y + 6
	for _, s := range ss {
		if len(s.x) == 0 {
			continue
		}
		for i := 1; i < len(s.x); i++ {
			line(img, px(s.x[i-1]), py(s.y[i-1]), px(s.x[i]), py(s.y[i]), s.c, 2)
		}
		for i := range s.x {
			if len(s.x) < 60 {
				fill(img, image.Rect(px(s.x[i])-2, py(s.y[i])-2, px(s.x[i])+3, py(s.y[i])+3), s.c)
			}
		}
		lx := plot.Max.X - 130
		fill(img, image.Rect(lx, ly+1, lx+16, ly+5), s.c)
		drawText(img, lx+22, ly, s.name, 1, black)
		ly += 14
	}
}

// ticks returns about n round values spanning [lo, hi].
func ticks(lo, hi float64, n int) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		out = append(out, t)
	}
	return out
}

func fmtTick(t float64) string {
	if math.Abs(t) < 1e-12 {
		return "0"
	}
	if math.Abs(t) >= 1e4 || math.Abs(t) < 1e-3 {
		return strconv.FormatFloat(t, 'e', 1, 64)
	}
	return strconv.FormatFloat(t, 'g', 4, 64)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		setPix(img, x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		setPix(img, x, y, c)
	}
}

// line draws a thick line segment (Bresenham with a square pen).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		for oy := 0; oy < width; oy++ {
			for ox := 0; ox < width; ox++ {
				setPix(img, x0+ox-width/2, y0+oy-width/2, c)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sign(x int) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

// PlotConfusion draws a confusion matrix (rows: true class, columns: predicted class; cell
// shade by the row's share) with class indices on the axes and a legend of class names.
func PlotConfusion(ev *Evaluation, pngPath string) error {
	n := len(ev.Classes)
	cell := max(8, min(48, 600/max(n, 1)))
	legendW := 0
	for i, c := range ev.Classes {
		legendW = max(legendW, textWidth(fmt.Sprintf("%d %s", i, c), 1))
	}
	if n > 60 {
		legendW = 0
	}
	left, top := 60, 76
	w := left + n*cell + 30 + legendW + 20
	h := max(top+n*cell+40, top+n*12+40)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Rect, white)
	title := fmt.Sprintf("confusion matrix: top-1 %.1f%%", 100*ev.Accuracy)
	drawText(img, 10, 10, title, 2, black)
	drawText(img, left, top-44, "predicted", 1, black)
	drawText(img, 4, top+n*cell+8, "true", 1, black)
	for i := 0; i < n; i++ {
		total := ev.Count[i]
		for j := 0; j < n; j++ {
			share := 0.0
			if total > 0 {
				share = float64(ev.Confusion[i][j]) / float64(total)
			}
			v := uint8(255 - math.Round(200*share))
			c := color.RGBA{v, v, 255, 255}
			if i == j {
				c = color.RGBA{v, 255, v, 255}
			}
			r := image.Rect(left+j*cell, top+i*cell, left+(j+1)*cell-1, top+(i+1)*cell-1)
			fill(img, r, c)
			if cell >= 24 && ev.Confusion[i][j] > 0 {
				s := strconv.Itoa(ev.Confusion[i][j])
				drawText(img, r.Min.X+(cell-textWidth(s, 1))/2, r.Min.Y+cell/2-4, s, 1, black)
			}
		}
		if cell >= 12 || i%5 == 0 {
			s := strconv.Itoa(i)
			drawText(img, left-8-textWidth(s, 1), top+i*cell+cell/2-4, s, 1, black)
			drawText(img, left+i*cell+(cell-textWidth(s, 1))/2, top-24, s, 1, black)
		}
	}
	if legendW > 0 {
		for i, c := range ev.Classes {
			drawText(img, left+n*cell+30, top+i*12, fmt.Sprintf("%d %s", i, c), 1, black)
		}
	}
	return savePNG(pngPath, img)
}

// savePNG encodes img to a temporary file beside path and renames it.
func savePNG(path string, img image.Image) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	name := f.Name()
	var buf bytes.Buffer
	err = png.Encode(&buf, img)
	if err == nil {
		_, err = f.Write(withSoftwareChunk(buf.Bytes()))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, 0o644)
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
	}
	return err
}

// pngSoftware is the tEXt chunk that marks the PNG files skipgraph writes (keyword Software).
const pngSoftware = "Software\x00skipgraph"

// withSoftwareChunk inserts the tEXt chunk pngSoftware after the IHDR chunk of an encoded PNG.
func withSoftwareChunk(p []byte) []byte {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, then IHDR: length, type, data, CRC
	if len(p) < ihdrEnd {
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

// RecognisePNG returns nil when path is a PNG file that skipgraph wrote (a plot or a confusion
// matrix), else why not.
func RecognisePNG(path string) error {
	f, err := safeio.Open(path)
	if err != nil {
		return unwrap(err)
	}
	defer f.Close()
	head := make([]byte, 8+25+12+len(pngSoftware))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")) {
		return errors.New("not a PNG file")
	}
	if !bytes.Contains(head, []byte("tEXt"+pngSoftware)) {
		return errors.New("a PNG file that skipgraph did not write")
	}
	return nil
}
