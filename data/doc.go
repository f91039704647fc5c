// Package data provides what training and evaluation read: image folders
// with one sub-folder per class, published split files
// (split_zhou_<Name>.json), the base/new class subsets of the base-to-new
// protocol, the record of a few-shot draw, class names and prompt templates,
// CLIP's image preprocessing and training augmentation into float32 CHW
// batches, epoch samplers that a resumed run reproduces from a seed, an
// importer of IDX files (MNIST, Fashion-MNIST) and a generator of small
// synthetic image data sets.
//
// The CLIP text tokenizer lives in the sub-package data/tokenizer.
package data
