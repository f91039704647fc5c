package report

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/skipgraph/skipgraph/cost"
)

// ReportFile is the report page's file name in a run's folder.
const ReportFile = "report.html"

// KV is one row of a two-column table.
type KV struct {
	Key, Value string
}

// Plan is what the skip strategies save against full fine-tuning, per training step (from the
// cost package's estimates).
type Plan struct {
	// Strategies are the strategies of the run, with their parameters.
	Strategies []string
	// Full and Chosen are the estimates of full fine-tuning and of the run's strategies; nil
	// when they could not be computed (Note says why).
	Full, Chosen *cost.Estimate
	Note         string
}

// Eval is a classification result: per-class accuracy and the confusion matrix.
type Eval struct {
	// Split names the images evaluated ("validation", "test" ...).
	Split    string
	Classes  []string
	Accuracy float64
	// PerClass is each class's accuracy (NaN without images), Count its images.
	PerClass  []float64
	Count     []int
	Confusion [][]int
}

// Run is everything the report page shows; nil parts are left out.
type Run struct {
	Title    string
	Settings []KV
	Plan     *Plan
	Curves   *Curves
	Eval     *Eval
	Timings  []KV
}

// HTML renders the report page: one self-contained document, its figures inline SVG, its style
// inline CSS, nothing loaded from elsewhere.
func HTML(r *Run) ([]byte, error) {
	v := view{Run: r}
	if r.Curves != nil && len(r.Curves.Step)+len(r.Curves.Epoch) > 0 {
		f, err := CurvesFigure(r.Curves)
		if err != nil {
			return nil, err
		}
		if v.CurvesSVG, err = inlineSVG(f, "Loss per step and per epoch; training and validation accuracy per epoch"); err != nil {
			return nil, err
		}
	}
	if e := r.Eval; e != nil {
		f, err := ConfusionFigure(e.Classes, e.Confusion, fmt.Sprintf("Confusion matrix (%s): top-1 %.1f%%", e.Split, 100*e.Accuracy))
		if err != nil {
			return nil, err
		}
		if v.ConfusionSVG, err = inlineSVG(f, "Confusion matrix: rows are true classes, columns predicted classes"); err != nil {
			return nil, err
		}
		for i, c := range e.Classes {
			row := classRow{Name: c, Count: e.Count[i], Acc: "n/a", Width: "0"}
			if i < len(e.PerClass) && !math.IsNaN(e.PerClass[i]) {
				row.Acc = fmt.Sprintf("%.1f%%", 100*e.PerClass[i])
				row.Width = fmt.Sprintf("%.1f", 100*e.PerClass[i])
			}
			v.Classes = append(v.Classes, row)
		}
	}
	if p := r.Plan; p != nil && p.Full != nil && p.Chosen != nil {
		f, c := p.Full, p.Chosen
		ratio := func(a, b float64) string {
			if b == 0 {
				return ""
			}
			return fmt.Sprintf("%.3gx", b/a)
		}
		add := func(name, full, chosen, saving string) {
			v.PlanRows = append(v.PlanRows, planRow{name, full, chosen, saving})
		}
		add("trainable parameters", cost.FormatCount(f.Total.TrainableParams), cost.FormatCount(c.Total.TrainableParams), ratio(float64(c.Total.TrainableParams), float64(f.Total.TrainableParams)))
		add("optimizer state", cost.FormatBytes(f.Total.OptimizerBytes), cost.FormatBytes(c.Total.OptimizerBytes), ratio(float64(c.Total.OptimizerBytes), float64(f.Total.OptimizerBytes)))
		add("FLOPs per step", cost.FormatFLOPs(f.Total.StepFLOPs()), cost.FormatFLOPs(c.Total.StepFLOPs()), ratio(c.Total.StepFLOPs(), f.Total.StepFLOPs()))
		add("activation memory per step", cost.FormatBytes(int64(f.Total.ActivationBytes)), cost.FormatBytes(int64(c.Total.ActivationBytes)), ratio(c.Total.ActivationBytes, f.Total.ActivationBytes))
		if c.TextPrefixFLOPs > 0 || c.ImagePrefixFLOPs > 0 {
			v.Prefix = fmt.Sprintf("The frozen prefix runs once, not per step: text %s for all class prompts, image %s per image (per epoch under augmentation).", cost.FormatFLOPs(c.TextPrefixFLOPs), cost.FormatFLOPs(c.ImagePrefixFLOPs))
		}
	}
	var b bytes.Buffer
	if err := page.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Write renders the report page to path, through a temporary file that is renamed.
func Write(path string, r *Run) error {
	b, err := HTML(r)
	if err != nil {
		return err
	}
	return writeFile(path, b)
}

type view struct {
	*Run
	CurvesSVG, ConfusionSVG template.HTML
	Prefix                  string
	Classes                 []classRow
	PlanRows                []planRow
}

type classRow struct {
	Name, Acc, Width string
	Count            int
}

type planRow struct {
	Name, Full, Chosen, Saving string
}

// inlineSVG renders f as an <svg> element for an HTML page: the XML prolog and comment go, the
// size becomes responsive, and a title names the figure for screen readers.
func inlineSVG(f *Figure, title string) (template.HTML, error) {
	b, err := f.SVG()
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.Index(s, "<svg")
	if i < 0 {
		return "", fmt.Errorf("figure renderer wrote no <svg> element")
	}
	s = s[i:]
	end := strings.IndexByte(s, '>')
	head := s[:end]
	head = strings.Replace(head, "<svg", `<svg role="img" class="figure"`, 1)
	s = head + ">\n<title>" + template.HTMLEscapeString(title) + "</title>" + s[end+1:]
	// The SVG comes from the plotting library, which escapes every text it writes.
	return template.HTML(s), nil
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{"pct": func(x float64) float64 { return 100 * x }}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", "Liberation Sans", sans-serif; margin: 2rem auto; max-width: 64rem; padding: 0 1rem; color: #1b1b1b; line-height: 1.4; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { text-align: left; padding: 0.25rem 0.8rem 0.25rem 0; vertical-align: top; }
th { font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #e8eef7; width: 12rem; height: 0.8rem; }
.bar span { display: block; height: 100%; background: #005ab5; }
svg.figure { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
.note { color: #555; font-size: 0.9rem; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Settings}}<h2 id="settings">Settings</h2>
<table>{{range .}}<tr><th>{{.Key}}</th><td>{{.Value}}</td></tr>
{{end}}</table>{{end}}
{{with .Plan}}<h2 id="plan">What the skip strategies save (per training step)</h2>
<p>Strategies: {{range $i, $s := .Strategies}}{{if $i}}, {{end}}{{$s}}{{end}}</p>
{{if $.PlanRows}}<table id="plan-table"><tr><th></th><th>full fine-tuning</th><th>this run</th><th>full / this run</th></tr>
{{range $.PlanRows}}<tr><th>{{.Name}}</th><td class="num">{{.Full}}</td><td class="num">{{.Chosen}}</td><td class="num">{{.Saving}}</td></tr>
{{end}}</table>{{end}}
{{with $.Prefix}}<p class="note">{{.}}</p>{{end}}
{{with .Note}}<p class="note">{{.}}</p>{{end}}{{end}}
{{if .CurvesSVG}}<h2 id="curves">Loss and accuracy</h2>
{{.CurvesSVG}}{{end}}
{{with .Eval}}<h2 id="per-class">Per-class accuracy ({{.Split}}, top-1 {{printf "%.1f" (pct .Accuracy)}}%)</h2>
<table id="per-class-table"><tr><th>class</th><th>images</th><th>accuracy</th><th></th></tr>
{{range $.Classes}}<tr><td>{{.Name}}</td><td class="num">{{.Count}}</td><td class="num">{{.Acc}}</td><td><div class="bar"><span style="width: {{.Width}}%"></span></div></td></tr>
{{end}}</table>
<h2 id="confusion">Confusion matrix</h2>
{{$.ConfusionSVG}}{{end}}
{{with .Timings}}<h2 id="timings">Timings</h2>
<table>{{range .}}<tr><th>{{.Key}}</th><td>{{.Value}}</td></tr>
{{end}}</table>{{end}}
</body>
</html>
`))
