// Package report draws a training run's figures (loss and accuracy curves, confusion matrix)
// with gonum.org/v1/plot, as PNG and SVG, and writes the run's report page: one self-contained
// HTML file (inline SVG and CSS, nothing fetched) with the settings, what the skip strategies
// save, the curves, per-class accuracy, the confusion matrix and timings.
//
// It depends on no other package of the project but cost and tensorio, so every command that
// runs training (train, experiment) can use it.
package report
