package main

import (
	"strings"
	"testing"
)

func TestSummarise(t *testing.T) {
	in := strings.Join([]string{
		`{"kind":"ort_peak","ort_sgemm_gflops":200,"ort_add_gbs":30}`,
		`{"kind":"torch_peak","gflops":250,"coretype":"SkylakeX"}`,
		`{"kind":"torch_peak","gflops":260,"coretype":"SkylakeX"}`,
		`{"kind":"torch_peak","gflops":240,"coretype":"SkylakeX"}`,
		`{"kind":"numpy_add","gbs":25}`,
		`{"kind":"plan","case":"small","gflop":100,"floor_mib":1000,"trainable_mib":100}`,
		`{"kind":"skipgraph","case":"small","round":1,"median_ms":1000,"min_ms":800,"peak_rss_mib":1500,"update_ms":60}`,
		`{"kind":"skipgraph","case":"small","round":2,"median_ms":800,"min_ms":500,"peak_rss_mib":1300,"update_ms":40}`,
		`{"kind":"skipgraph","case":"small","round":3,"median_ms":900,"min_ms":800,"peak_rss_mib":1400,"update_ms":50}`,
		`{"kind":"torch","case":"small","round":1,"median_ms":2000,"min_ms":1000,"peak_rss_mib":2000}`,
		`{"kind":"plan","case":"alone","gflop":50,"floor_mib":500}`,
		`{"kind":"skipgraph","case":"alone","round":1,"median_ms":400,"min_ms":400,"peak_rss_mib":600}`,
	}, "\n")
	var out strings.Builder
	if err := summarise(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"peak used below: 250.0 GFLOP/s",
		"ONNX Runtime 30.0 GB/s [30], numpy 25.0 GB/s",
		"PyTorch/OpenBLAS 250.0 GFLOP/s [250 260 240]",
		// 100 GFLOP in 0.9 s = 111 GFLOP/s = 44% of 250 (fastest 0.8 s: 50%); 1400/1000;
		// torch 2 s = 20% (fastest 1 s: 40%)
		"| small | 100.0 | 1000 | 900 (800) | 44% (50%) | 1400 | 1.40 | 2000 (1000) | 20% (40%) | 2000 | 2.00 | 0.45 | 0.70 | 50 (10.5) |",
		"| alone | 50.0 | 500 | 400 (400) | 50% (50%) | 600 | 1.20 | - | - | - | - | - | - | - |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSummariseRefusesBadLines(t *testing.T) {
	for name, in := range map[string]string{
		"not json":     "{",
		"unknown kind": `{"kind":"other"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := summarise(strings.NewReader(in), &strings.Builder{}); err == nil {
				t.Error("no error")
			}
		})
	}
}
