// Package bundle turns a CLIP export into a Skip Tuning training bundle (the directory
// `skipgraph convert` writes): manifest.json, features.onnx (the frozen prefix, when a strategy
// caches one), train_step.onnx (one optimizer step) and eval.onnx (the full model with the
// trainable parameters as inputs). It also reads bundles back for the trainer and puts trained
// weights back into the source export.
package bundle
