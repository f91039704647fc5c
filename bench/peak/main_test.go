package main

import (
	"testing"

	"github.com/skipgraph/skipgraph/runtime"
)

// TestMeasureSmall runs both measurements at a small size on ONNX Runtime: the MatMul and Add
// graphs load, run with bound outputs, and give finite positive rates consistent with their
// times.
func TestMeasureSmall(t *testing.T) {
	if err := runtime.Init(); err != nil {
		t.Fatal(err)
	}
	res, err := measure(128, 1, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.SgemmMs <= 0 || res.AddMs <= 0 {
		t.Fatalf("times %v ms and %v ms, want positive", res.SgemmMs, res.AddMs)
	}
	if want := 2 * 128.0 * 128 * 128 / (res.SgemmMs / 1000) / 1e9; res.SgemmGFLOPs != want {
		t.Errorf("sgemm rate %v, want %v from its time", res.SgemmGFLOPs, want)
	}
	if want := 3 * float64(1<<20) / (res.AddMs / 1000) / 1e9; res.AddGBs != want {
		t.Errorf("add bandwidth %v, want %v from its time", res.AddGBs, want)
	}
	if res.ORT == "" {
		t.Error("no ONNX Runtime version recorded")
	}
}
