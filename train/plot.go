package train

import (
	"fmt"

	"github.com/skipgraph/skipgraph/report"
)

// PlotMetrics draws the loss and accuracy curves of a metrics.jsonl file into a PNG, and the
// same figure as SVG beside it: the loss per step (and per epoch) on the left, the training and
// validation accuracy per epoch on the right. Both files are written to temporary names and
// renamed.
func PlotMetrics(metricsPath, pngPath string) error {
	c, err := report.ReadCurves(metricsPath)
	if err != nil {
		return err
	}
	f, err := report.CurvesFigure(c)
	if err != nil {
		return err
	}
	_, err = f.Save(pngPath)
	return err
}

// PlotConfusion draws the confusion matrix of ev into a PNG, and the same figure as SVG beside
// it: rows are the true classes, columns the predicted ones, cells shaded by their share of the
// row and labelled with their count, class names on both axes as written.
func PlotConfusion(ev *Evaluation, pngPath string) error {
	f, err := report.ConfusionFigure(ev.Classes, ev.Confusion, confusionTitle(ev))
	if err != nil {
		return err
	}
	_, err = f.Save(pngPath)
	return err
}

func confusionTitle(ev *Evaluation) string {
	return fmt.Sprintf("Confusion matrix: top-1 accuracy %.1f%% on %d images", 100*ev.Accuracy, ev.Images)
}
