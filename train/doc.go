// Package train trains, evaluates and exports Skip Tuning bundles on ONNX Runtime.
//
// Train runs a bundle written by `skipgraph convert` on an image-folder data set: it tokenises
// the class prompts, builds the LSkip feature cache (the text prefix once for all class
// prompts; the image prefix once per epoch under augmentation, or once without), computes the
// CSkip prototypes and the per-run K and tail (package rewrite/classsel), and runs
// train_step.onnx with the optimizer the bundle was converted with (SGD or AdamW), a cosine
// schedule after a warm-up epoch at a constant small learning rate, and one learning rate per
// parameter group, on the CPU or, with Device "cuda", with parameters, optimizer state and
// feature caches resident on the GPU (bundle.Stepper). It writes the run record (run.json), the
// few-shot draw (train_items.json), metrics (metrics.jsonl), a checkpoint per epoch (and every
// CheckpointSteps steps when set), the loss and accuracy plot (plot.png, plot.svg), the run's
// report page (package report) and the trained parameters (params.safetensors, params/). Each
// epoch's record in metrics.jsonl holds, besides loss and accuracy, cache_time (seconds spent
// building the epoch's image cache: decoding, augmentation and the frozen image prefix; 0 when
// an earlier epoch's cache serves) and step_time (seconds in the epoch's optimizer steps).
//
// Image decoding overlaps the frozen prefix: a goroutine decodes up to Config.DecodeAhead
// batches ahead of the features run (data.Preprocessor.Each), drawing the augmentation in
// the same order as decoding in turn would, so the cache does not depend on it.
//
// Everything random is derived from the run's seed and the epoch number (the few-shot draw,
// the batch order, the augmentation), so a run resumed from a checkpoint computes the same
// weights as one that was never interrupted.
//
// Text inputs: each class prompt is every template filled with the class name. The text input
// of the training graphs is the first template's prompt; with several templates, the CSkip
// prototypes and the zero-shot classifier use the mean of the normalised text features over
// the templates (renormalised), as CLIP's prompt ensembling does.
//
// Evaluate computes top-1 accuracy, per-class accuracy and a confusion matrix for a bundle
// (eval.onnx with trained parameters) or for a plain CLIP export (zero-shot). Export puts
// trained parameters back into the source export's initializers.
package train
