// Package runtime runs ONNX models on ONNX Runtime (ORT) through github.com/yalue/onnxruntime_go.
//
// Init finds and loads libonnxruntime once: $ONNXRUNTIME_LIB if set, else the copy that
// scripts/fetch-ort.sh caches (CachedLibraryPath), else the system's. Sessions run on the CPU or,
// with Options.Device "cuda", on the CUDA execution provider.
//
// Two ways to run a Session:
//
//   - Session.Run takes and returns tensorio.Tensor values by name (Go memory; inputs are not
//     copied, outputs of a fixed shape are written in place, others are allocated).
//   - A Binding binds pre-allocated Values (ORT tensors over Go memory) to inputs and outputs once;
//     Binding.Run then runs without allocating, and Binding.Swap exchanges an input's and an
//     output's values so that, for example, a train step's "<param>.next" output becomes the next
//     step's "<param>" input without a copy.
//
// Every ORT object this package creates has a Close method; Session.Close also closes the
// Bindings made from it.
package runtime
