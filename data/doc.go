// Package data provides what training and evaluation read: image folders
// with one sub-folder per class, class names and prompt templates, CLIP's
// image preprocessing and training augmentation into float32 CHW batches,
// epoch samplers that a resumed run reproduces from a seed, and a generator
// of small synthetic image data sets.
//
// The CLIP text tokenizer lives in the sub-package data/tokenizer.
package data
