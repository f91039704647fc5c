package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"github.com/skipgraph/skipgraph/internal/safeio"
	"github.com/skipgraph/skipgraph/tensorio"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Curves are a run's training curves.
type Curves struct {
	// Step and StepLoss are the loss of every optimizer step.
	Step, StepLoss []float64
	// EpochStep is the step count at the end of each epoch and EpochLoss that epoch's mean loss.
	EpochStep, EpochLoss []float64
	// Epoch (1-based) with the training accuracy and the validation accuracy (NaN where there
	// was no validation split), as fractions.
	Epoch, TrainAcc, ValAcc []float64
}

// ReadCurves reads the curves from a metrics.jsonl file: one JSON object a line, {"type":
// "step", "step", "loss"} per step and {"type": "epoch", "epoch", "step", "loss", "acc",
// "val_acc"} per epoch; other lines are passed over.
func ReadCurves(path string) (*Curves, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &Curves{}
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
			c.Step = append(c.Step, r.Step)
			c.StepLoss = append(c.StepLoss, *r.Loss)
		case "epoch":
			c.EpochStep = append(c.EpochStep, r.Step)
			c.EpochLoss = append(c.EpochLoss, *r.Loss)
			acc, val := math.NaN(), math.NaN()
			if r.Acc != nil {
				acc = *r.Acc
			}
			if r.ValAcc != nil {
				val = *r.ValAcc
			}
			c.Epoch = append(c.Epoch, float64(r.Epoch))
			c.TrainAcc = append(c.TrainAcc, acc)
			c.ValAcc = append(c.ValAcc, val)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Figure is one or more plots side by side, drawn to PNG or SVG.
type Figure struct {
	plots [][]*plot.Plot
	// W and H are the figure's size.
	W, H vg.Length
}

// Colours of the series (a colour-blind-safe set).
var (
	colStepLoss = color.RGBA{166, 189, 219, 255}
	colLoss     = color.RGBA{0, 90, 181, 255}
	colTrain    = color.RGBA{220, 50, 32, 255}
	colVal      = color.RGBA{0, 140, 70, 255}
)

// sans sets every text of p in a sans-serif face at readable sizes.
func sans(p *plot.Plot) {
	set := func(s *text.Style, size vg.Length) {
		s.Font = font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
	}
	set(&p.Title.TextStyle, 14)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		set(&a.Label.TextStyle, 12)
		set(&a.Tick.Label, 10)
	}
	set(&p.Legend.TextStyle, 10)
	p.Title.Padding = vg.Points(6)
}

func line(p *plot.Plot, name string, xs, ys []float64, c color.Color, width float64, points bool) error {
	var xy plotter.XYs
	for i := range xs {
		if i < len(ys) && !math.IsNaN(ys[i]) && !math.IsInf(ys[i], 0) {
			xy = append(xy, plotter.XY{X: xs[i], Y: ys[i]})
		}
	}
	if len(xy) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color, l.Width = c, vg.Points(width)
	p.Add(l)
	if points {
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return err
		}
		s.Color, s.Shape, s.Radius = c, draw.CircleGlyph{}, vg.Points(2.5)
		p.Add(s)
		p.Legend.Add(name, l, s)
	} else {
		p.Legend.Add(name, l)
	}
	return nil
}

// CurvesFigure draws the loss (per step, faint, and per epoch) against the step on the left and
// the training and validation accuracy per epoch, in percent, on the right.
func CurvesFigure(c *Curves) (*Figure, error) {
	loss := plot.New()
	sans(loss)
	loss.Title.Text = "Training loss"
	loss.X.Label.Text = "optimizer step"
	loss.Y.Label.Text = "cross-entropy loss"
	loss.Add(plotter.NewGrid())
	if err := line(loss, "loss per step", c.Step, c.StepLoss, colStepLoss, 1, false); err != nil {
		return nil, err
	}
	if err := line(loss, "mean loss per epoch", c.EpochStep, c.EpochLoss, colLoss, 2, true); err != nil {
		return nil, err
	}
	loss.Legend.Top = true
	loss.Y.Min = 0
	loss.X.Tick.Marker = integerTicks{}

	acc := plot.New()
	sans(acc)
	acc.Title.Text = "Accuracy"
	acc.X.Label.Text = "epoch"
	acc.Y.Label.Text = "top-1 accuracy (%)"
	acc.Add(plotter.NewGrid())
	pct := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = 100 * x
		}
		return out
	}
	if err := line(acc, "train", c.Epoch, pct(c.TrainAcc), colTrain, 2, true); err != nil {
		return nil, err
	}
	if err := line(acc, "validation", c.Epoch, pct(c.ValAcc), colVal, 2, true); err != nil {
		return nil, err
	}
	acc.Y.Min, acc.Y.Max = 0, 100
	acc.Legend.Top, acc.Legend.Left = false, false
	acc.X.Tick.Marker = integerTicks{}
	if len(c.Epoch) > 0 {
		acc.X.Min, acc.X.Max = math.Min(c.Epoch[0], 1)-0.2, c.Epoch[len(c.Epoch)-1]+0.2
	}
	return &Figure{plots: [][]*plot.Plot{{loss, acc}}, W: 11 * vg.Inch, H: 4 * vg.Inch}, nil
}

// integerTicks labels whole numbers only (steps, epochs), at a round interval (1, 2 or 5 times
// a power of ten) that gives about eight labels.
type integerTicks struct{}

// Ticks implements plot.Ticker.
func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	step := niceStep((hi - lo) / 8)
	var out []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		out = append(out, plot.Tick{Value: v, Label: strconv.Itoa(int(v))})
	}
	return out
}

// niceStep is the smallest of 1, 2 and 5 times a power of ten (at least 1) that is >= x.
func niceStep(x float64) float64 {
	if x <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// confusionGrid is a confusion matrix as a heat map grid: column j is the predicted class,
// row r (from the bottom) the true class n-1-r, so that class 0 is at the top; Z is the row's
// share.
type confusionGrid struct {
	m     [][]int
	total []int
}

func (g confusionGrid) Dims() (int, int) { return len(g.m), len(g.m) }
func (g confusionGrid) X(c int) float64  { return float64(c) }
func (g confusionGrid) Y(r int) float64  { return float64(r) }
func (g confusionGrid) Z(c, r int) float64 {
	i := len(g.m) - 1 - r
	if g.total[i] == 0 {
		return 0
	}
	return float64(g.m[i][c]) / float64(g.total[i])
}

// blues runs from white to a dark blue.
type blues struct{}

// Colors implements palette.Palette.
func (blues) Colors() []color.Color {
	out := make([]color.Color, 101)
	for i := range out {
		t := float64(i) / 100
		out[i] = color.RGBA{uint8(255 - t*247), uint8(255 - t*207), uint8(255 - t*148), 255}
	}
	return out
}

// ConfusionFigure draws a confusion matrix: rows are the true classes (class 0 at the top),
// columns the predicted ones, each cell shaded by its share of the row and labelled with its
// count. Class names are written as given, on both axes.
func ConfusionFigure(classes []string, confusion [][]int, title string) (*Figure, error) {
	n := len(classes)
	if n == 0 || len(confusion) != n {
		return nil, fmt.Errorf("confusion matrix of %d rows for %d classes", len(confusion), n)
	}
	total := make([]int, n)
	for i, row := range confusion {
		if len(row) != n {
			return nil, fmt.Errorf("confusion matrix row %d has %d columns, want %d", i, len(row), n)
		}
		for _, v := range row {
			total[i] += v
		}
	}
	p := plot.New()
	sans(p)
	p.Title.Text = title
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	hm := plotter.NewHeatMap(confusionGrid{confusion, total}, blues{})
	hm.Min, hm.Max = 0, 1
	p.Add(hm)
	// Label every class while they fit, else every k-th.
	every := max(1, (n+59)/60)
	var xt, yt []plot.Tick
	longest := 0
	for i, c := range classes {
		label := ""
		if i%every == 0 {
			label = c
			longest = max(longest, len([]rune(c)))
		}
		xt = append(xt, plot.Tick{Value: float64(i), Label: label})
		yt = append(yt, plot.Tick{Value: float64(n - 1 - i), Label: label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(xt)
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YTop
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	cell := vg.Points(math.Max(12, math.Min(40, 480/float64(n))))
	if n <= 30 {
		var lx plotter.XYLabels
		var styles []text.Style
		for i := range confusion {
			for j, v := range confusion[i] {
				if v == 0 {
					continue
				}
				lx.XYs = append(lx.XYs, plotter.XY{X: float64(j), Y: float64(n - 1 - i)})
				lx.Labels = append(lx.Labels, strconv.Itoa(v))
				s := p.X.Tick.Label
				s.Rotation = 0
				s.XAlign, s.YAlign = draw.XCenter, draw.YCenter
				s.Font.Size = vg.Points(math.Min(10, cell.Points()*0.45))
				s.Color = color.Black
				if total[i] > 0 && float64(v)/float64(total[i]) > 0.55 {
					s.Color = color.White
				}
				styles = append(styles, s)
			}
		}
		if len(lx.XYs) > 0 {
			labels, err := plotter.NewLabels(lx)
			if err != nil {
				return nil, err
			}
			labels.TextStyle = styles
			p.Add(labels)
		}
	}
	margin := vg.Points(float64(longest)*6+70) + vg.Points(12)
	side := cell*vg.Length(n) + margin
	return &Figure{plots: [][]*plot.Plot{{p}}, W: max(side, 4*vg.Inch), H: max(side, 4*vg.Inch) + 20}, nil
}

// draw draws f on c.
func (f *Figure) draw(c vg.CanvasSizer) {
	dc := draw.New(c)
	rows, cols := len(f.plots), len(f.plots[0])
	pad := vg.Points(8)
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(24), PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: 2 * pad}
	canvases := plot.Align(f.plots, t, dc)
	for i, row := range f.plots {
		for j, p := range row {
			p.Draw(canvases[i][j])
		}
	}
}

// PNG renders f at 96 dots per inch on a white background.
func (f *Figure) PNG() ([]byte, error) {
	c := vgimg.NewWith(vgimg.UseWH(f.W, f.H), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	f.draw(c)
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SVG renders f as a standalone SVG document (fonts named, not embedded).
func (f *Figure) SVG() ([]byte, error) {
	c := vgsvg.New(f.W, f.H)
	f.draw(c)
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Save writes f to pngPath and, beside it, the same figure as SVG (the extension replaced by
// .svg); each file goes through a temporary name and is renamed. It returns the SVG's path.
func (f *Figure) Save(pngPath string) (string, error) {
	png, err := f.PNG()
	if err != nil {
		return "", err
	}
	svg, err := f.SVG()
	if err != nil {
		return "", err
	}
	svgPath := SVGPath(pngPath)
	if err := writeFile(pngPath, markPNG(png)); err != nil {
		return "", err
	}
	if err := writeFile(svgPath, markSVG(svg)); err != nil {
		return "", err
	}
	return svgPath, nil
}

// writeFile writes b to path through a temporary file that is renamed.
func writeFile(path string, b []byte) error {
	return tensorio.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}
