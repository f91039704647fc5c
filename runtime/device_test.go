package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

// The OrtApi slots the package calls are those of onnxruntime_c_api.h shipped with the
// onnxruntime_go version in go.mod (checked by compiling a C program against that header).
func TestAPISlots(t *testing.T) {
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/yalue/onnxruntime_go").Output()
	if err != nil {
		t.Fatalf("locating onnxruntime_go: %v", err)
	}
	hdr := filepath.Join(strings.TrimSpace(string(dir)), "onnxruntime_c_api.h")
	if _, err := os.Stat(hdr); err != nil {
		t.Fatalf("header: %v", err)
	}
	names := make([]string, 0, len(apiSlots))
	for n := range apiSlots {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include \"onnxruntime_c_api.h\"\nint main(void) {\n")
	fmt.Fprintf(&b, "printf(\"%%d\\n\", ORT_API_VERSION);\n")
	for _, n := range names {
		fmt.Fprintf(&b, "printf(\"%s %%zu\\n\", offsetof(OrtApi, %s) / sizeof(void*));\n", n, n)
	}
	b.WriteString("return 0;\n}\n")
	work := t.TempDir()
	src := filepath.Join(work, "slots.c")
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "slots")
	if out, err := exec.Command("cc", "-I", filepath.Dir(hdr), "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compiling against %s: %v\n%s", hdr, err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if v, _ := strconv.Atoi(lines[0]); v < apiVersion {
		t.Errorf("header is API %d, the package asks for %d", v, apiVersion)
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		want, _ := strconv.Atoi(f[1])
		if apiSlots[f[0]] != want {
			t.Errorf("%s: slot %d in the package, %d in %s", f[0], apiSlots[f[0]], want, hdr)
		}
	}
}

// The loaded build lists its providers; the CPU provider is always among them.
func TestAvailableProviders(t *testing.T) {
	requireORT(t)
	ps, err := AvailableProviders()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(ps)
	if !slices.Contains(ps, "CPUExecutionProvider") {
		t.Fatalf("providers %v lack CPUExecutionProvider", ps)
	}
}

// Values in memory a session's allocator hands out bind like Go-memory values; Kernels copy
// into and out of them, gather rows and concatenate, and a binding swaps them, all through the
// same code a CUDA session runs (on the CPU here).
func TestDeviceMemoryOnCPU(t *testing.T) {
	requireORT(t)
	s, err := NewSessionFromBytes("add_one", addOneModel(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mem, err := s.NewMemory(0)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKernels(nil)
	defer k.Close()
	host, _ := tensorio.FromSlice([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	hv, err := NewValue(host)
	if err != nil {
		t.Fatal(err)
	}
	defer hv.Close()
	x, err := mem.New(tensorio.Float32, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := mem.New(tensorio.Float32, 2, 3)
	if x.Device() != DeviceCPU || x.String() != "float32[2 3]" {
		t.Fatalf("device value %v on %s", x, x.Device())
	}
	if err := k.Copy(x, hv); err != nil {
		t.Fatal(err)
	}
	b, err := s.NewBinding()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.BindInput("x", x); err != nil {
		t.Fatal(err)
	}
	if err := b.BindOutput("y", y); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := b.Run(); err != nil {
			t.Fatal(err)
		}
		if err := b.Swap("x", "y"); err != nil {
			t.Fatal(err)
		}
	}
	back, _ := NewEmptyValue(tensorio.Float32, 2, 3)
	defer back.Close()
	if err := k.Copy(back, b.Input("x")); err != nil {
		t.Fatal(err)
	}
	if got, want := back.Tensor().Float32s(), []float32{4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("after 3 steps x = %v, want %v", got, want)
	}
	if got := b.Input("x").Tensor().Float32s(); !slices.Equal(got, back.Tensor().Float32s()) {
		t.Fatalf("CPU view of the allocator's memory %v differs from the copy %v", got, back.Tensor().Float32s())
	}

	// rows 1, 0, 1 of a concatenation of x (rows 4..9) and the host tensor
	cat, _ := mem.New(tensorio.Float32, 4, 3)
	if err := k.Concat(cat, []*Value{b.Input("x"), hv}, 0); err != nil {
		t.Fatal(err)
	}
	idx, _ := NewValue(&tensorio.Tensor{DType: tensorio.Int64, Shape: []int64{3}, Data: []int64{3, 0, 3}})
	defer idx.Close()
	rows, _ := mem.New(tensorio.Float32, 3, 3)
	if err := k.Gather(rows, cat, idx, 0); err != nil {
		t.Fatal(err)
	}
	if got, want := rows.Tensor().Float32s(), []float32{4, 5, 6, 4, 5, 6, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("gathered rows %v, want %v", got, want)
	}
	cols, _ := mem.New(tensorio.Float32, 2, 2)
	idx2, _ := NewValue(&tensorio.Tensor{DType: tensorio.Int64, Shape: []int64{2}, Data: []int64{2, 0}})
	defer idx2.Close()
	if err := k.Gather(cols, hv, idx2, 1); err != nil {
		t.Fatal(err)
	}
	if got, want := cols.Tensor().Float32s(), []float32{3, 1, 6, 4}; !slices.Equal(got, want) {
		t.Fatalf("gathered columns %v, want %v", got, want)
	}
	if err := k.Copy(cols, hv); err == nil {
		t.Fatal("copy between shapes [2 3] and [2 2]: no error")
	}
	if err := mem.Close(); err == nil {
		t.Fatal("closing memory with live values: no error")
	}
	for _, v := range []*Value{x, y, cat, rows, cols} {
		v.Close()
	}
	if err := x.SetScalar(1); err == nil {
		t.Fatal("SetScalar on a closed value: no error")
	}
	if err := mem.Close(); err != nil {
		t.Fatal(err)
	}
}
