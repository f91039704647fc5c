package runtime

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/tensorio"
)

func TestInitIdempotent(t *testing.T) {
	requireORT(t)
	if err := Init(); err != nil {
		t.Fatal(err)
	}
	if LibraryPath() == "" || !filepath.IsAbs(LibraryPath()) {
		t.Errorf("LibraryPath() = %q, want an absolute path", LibraryPath())
	}
	if !strings.HasPrefix(Version(), "1.") {
		t.Errorf("Version() = %q", Version())
	}
	t.Logf("ONNX Runtime %s from %s", Version(), LibraryPath())
}

func TestLoadLibraryOrder(t *testing.T) {
	fail := errors.New("dlopen: cannot open shared object file\nsecond line")
	var tried []string
	load := func(ok map[string]bool) func(string) error {
		return func(p string) error {
			tried = append(tried, p)
			if ok[p] {
				return nil
			}
			return fail
		}
	}
	exists := func(p string) bool { return p == "/env/lib.so" || p == "/cache/lib.so" }

	// $ONNXRUNTIME_LIB wins and is the only one tried.
	tried = nil
	p, err := loadLibrary("/env/lib.so", "/cache/lib.so", exists, load(map[string]bool{"/env/lib.so": true}))
	if err != nil || p != "/env/lib.so" || len(tried) != 1 {
		t.Errorf("env: %q, %v, tried %v", p, err, tried)
	}
	// A missing $ONNXRUNTIME_LIB is an error naming it, with no fallback.
	tried = nil
	_, err = loadLibrary("/nope.so", "/cache/lib.so", exists, load(nil))
	if err == nil || !strings.Contains(err.Error(), "ONNXRUNTIME_LIB=/nope.so") || len(tried) != 0 {
		t.Errorf("missing env lib: %v, tried %v", err, tried)
	}
	// Cache next.
	tried = nil
	p, err = loadLibrary("", "/cache/lib.so", exists, load(map[string]bool{"/cache/lib.so": true}))
	if err != nil || p != "/cache/lib.so" {
		t.Errorf("cache: %q, %v", p, err)
	}
	// Then the system's.
	tried = nil
	p, err = loadLibrary("", "/nocache/lib.so", exists, load(map[string]bool{"libonnxruntime.so": true}))
	if err != nil || p != "libonnxruntime.so" || !reflect.DeepEqual(tried, []string{"libonnxruntime.so.1", "libonnxruntime.so"}) {
		t.Errorf("system: %q, %v, tried %v", p, err, tried)
	}
	// Nothing: one line naming every place tried and what to do.
	_, err = loadLibrary("", "/nocache/lib.so", exists, load(nil))
	if err == nil {
		t.Fatal("no library: no error")
	}
	msg := err.Error()
	for _, want := range []string{"ONNXRUNTIME_LIB unset", "/nocache/lib.so: not found", "libonnxruntime.so.1", "make setup"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans several lines: %q", msg)
	}
}

func TestCachedLibraryPath(t *testing.T) {
	t.Setenv("SKIPGRAPH_CACHE", "/c")
	if got := CachedLibraryPath(); got != "/c/onnxruntime-"+ORTVersion+"/libonnxruntime.so.1" {
		t.Errorf("with SKIPGRAPH_CACHE: %s", got)
	}
	t.Setenv("SKIPGRAPH_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/x")
	if got := CachedLibraryPath(); got != "/x/skipgraph/onnxruntime-"+ORTVersion+"/libonnxruntime.so.1" {
		t.Errorf("with XDG_CACHE_HOME: %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/h")
	if got := CachedLibraryPath(); got != "/h/.cache/skipgraph/onnxruntime-"+ORTVersion+"/libonnxruntime.so.1" {
		t.Errorf("with HOME: %s", got)
	}
}

// The reference CLIP runs on ORT and matches torch's outputs.
func TestCLIPReference(t *testing.T) {
	requireORT(t)
	model := fixture(t, "clip-hf-tiny/model.onnx")
	ref := fixture(t, "clip-hf-tiny/reference.json")
	inputs, err := tensorio.LoadJSONMap(ref, "inputs")
	if err != nil {
		t.Fatal(err)
	}
	want, err := tensorio.LoadJSONMap(ref, "outputs")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(model, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"input_ids", "pixel_values", "attention_mask"} {
		if _, ok := s.Input(name); !ok {
			t.Errorf("session lacks input %q; has %v", name, s.InputNames())
		}
	}
	got, err := s.Run(inputs)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 4 {
		t.Errorf("reference has %d outputs, want 4", len(want))
	}
	for name, w := range want {
		g := got[name]
		if g == nil {
			t.Errorf("output %q missing; got %v", name, s.OutputNames())
			continue
		}
		d, err := tensorio.MaxAbsDiff(g, w)
		if err != nil {
			t.Errorf("output %q: %v", name, err)
			continue
		}
		if d >= 1e-5 {
			t.Errorf("output %q: max abs diff %g >= 1e-5", name, d)
		}
		t.Logf("%s %v: max abs diff %.3g", name, g.Shape, d)
	}
}

func TestRunErrors(t *testing.T) {
	requireORT(t)
	s, err := NewSessionFromBytes("add_one", addOneModel(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x, _ := tensorio.FromSlice([]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	cases := []struct {
		in   map[string]*Tensor
		want string
	}{
		{map[string]*Tensor{"x": x, "z": x}, `unknown input "z"`},
		{map[string]*Tensor{}, `missing input "x"`},
		{map[string]*Tensor{"x": tensorio.Scalar(int64(1))}, `input "x" wants float32, got int64`},
		{map[string]*Tensor{"x": {DType: tensorio.Float32, Shape: []int64{3, 2}, Data: make([]float32, 6)}}, `input "x" wants shape [2 3], got [3 2]`},
		{map[string]*Tensor{"x": {DType: tensorio.Float32, Shape: []int64{2, 3}, Data: make([]float32, 5)}}, `needs 6 elements`},
	}
	for _, c := range cases {
		_, err := s.Run(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "model add_one") {
			t.Errorf("Run: err = %v, want one naming the model and containing %q", err, c.want)
		}
	}
	out, err := s.Run(map[string]*Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["y"].Float32s(); !reflect.DeepEqual(got, []float32{2, 3, 4, 5, 6, 7}) {
		t.Errorf("y = %v", got)
	}

	if _, err := NewSession(filepath.Join(t.TempDir(), "none.onnx"), nil); err == nil || !strings.Contains(err.Error(), "none.onnx") {
		t.Errorf("missing model file: %v", err)
	}
	if _, err := NewSessionFromBytes("junk", []byte("not a model at all"), nil); err == nil || !strings.Contains(err.Error(), "model junk") {
		t.Errorf("junk model: %v", err)
	}
	if _, err := NewSessionFromBytes("dev", addOneModel(t), &Options{Device: "tpu"}); err == nil || !strings.Contains(err.Error(), `unknown device "tpu"`) {
		t.Errorf("bad device: %v", err)
	}
}

// Dynamic dims, scalars, bool, int64 and float16 outputs through Session.Run; metadata.
func TestRunMixedTypes(t *testing.T) {
	requireORT(t)
	s, err := NewSessionFromBytes("mixed", mixedModel(t), &Options{IntraOpThreads: 1, OptLevel: OptBasic})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	step, _ := s.Input("step")
	if step.DType != tensorio.Int64 || step.Shape == nil || len(step.Shape) != 0 {
		t.Errorf("input step: %v", step)
	}
	x, _ := s.Input("x")
	if x.String() != "x float32[n 3]" || x.Static() {
		t.Errorf("input x: %v", x)
	}
	xs, _ := tensorio.FromSlice([]int64{2, 3}, []float32{-1, 2, -3, 4, 5, -6})
	ws, _ := tensorio.FromSlice([]int64{2}, []float32{0.5, -3})
	out, err := s.Run(map[string]*Tensor{"x": xs, "step": tensorio.Scalar(int64(41)), "w": ws})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["y"].Float32s(); !reflect.DeepEqual(got, []float32{0, 3, -2, 5, 6, -5}) || !reflect.DeepEqual(out["y"].Shape, []int64{2, 3}) {
		t.Errorf("y = %v %v", out["y"].Shape, got)
	}
	if got := out["s"]; len(got.Shape) != 0 || got.Float32s()[0] != 1 {
		t.Errorf("s = %v %v", got, got.Data)
	}
	if got := out["pos"].Bools(); !reflect.DeepEqual(got, []bool{false, true, false, true, true, false}) {
		t.Errorf("pos = %v", got)
	}
	if got := out["step.next"].Int64s(); !reflect.DeepEqual(got, []int64{42}) {
		t.Errorf("step.next = %v", got)
	}
	if h, _ := out["h"].AsFloat32(); out["h"].DType != tensorio.Float16 || !reflect.DeepEqual(h, []float32{0.5, -3}) {
		t.Errorf("h = %v %v", out["h"], h)
	}
}

// On a machine without the CUDA provider libraries (or a GPU), --device cuda gives one clear
// error line, not a panic, and no session.
func TestCUDAMissingError(t *testing.T) {
	requireORT(t)
	dir := filepath.Dir(LibraryPath())
	if fileExists(filepath.Join(dir, "libonnxruntime_providers_cuda.so")) && fileExists("/dev/nvidia0") {
		t.Skip("CUDA provider libraries and a GPU are present; the missing-CUDA error cannot be provoked here")
	}
	s, err := NewSessionFromBytes("add_one", addOneModel(t), &Options{Device: DeviceCUDA})
	if err == nil {
		s.Close()
		t.Fatal("device cuda without CUDA: no error")
	}
	msg := err.Error()
	t.Log(msg)
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans several lines")
	}
	for _, want := range []string{"model add_one", "device cuda", "libonnxruntime_providers_cuda.so", dir} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
}

// y = x + 1 run N times, swapping y back into x each step: x ends at x0 + N, with no copies.
func TestBindingSwapLoop(t *testing.T) {
	requireORT(t)
	s, err := NewSessionFromBytes("add_one", addOneModel(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x0 := []float32{0, 1, 2, 3, 4, 5}
	xt, _ := tensorio.FromSlice([]int64{2, 3}, append([]float32{}, x0...))
	x, err := NewValue(xt)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	y, err := NewEmptyValue(tensorio.Float32, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Close()
	b, err := s.NewBinding()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Run(); err == nil || !strings.Contains(err.Error(), `input "x" is not bound`) {
		t.Errorf("run with nothing bound: %v", err)
	}
	if err := b.Bind("x", x); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind("y", y); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 0; i < n; i++ {
		if err := b.Run(); err != nil {
			t.Fatal(err)
		}
		if err := b.Swap("x", "y"); err != nil {
			t.Fatal(err)
		}
	}
	// After an even number of swaps x's own buffer is bound to the input again.
	final := b.Input("x")
	if final != x {
		t.Errorf("after %d swaps the input is not the original buffer", n)
	}
	got := final.Tensor().Float32s()
	for i := range x0 {
		if got[i] != x0[i]+n {
			t.Fatalf("after %d steps x = %v, want x0+%d", n, got, n)
		}
	}
	// The last output lives in the other buffer: x0 + n - 1 + ... it was swapped into y.
	if yy := b.Output("y").Tensor().Float32s(); yy[0] != x0[0]+n-1 {
		t.Errorf("output buffer holds %v, want x0+%d", yy, n-1)
	}

	bad, _ := NewEmptyValue(tensorio.Float32, 3, 2)
	defer bad.Close()
	if err := b.BindInput("x", bad); err == nil || !strings.Contains(err.Error(), `input "x" wants shape [2 3], got [3 2]`) {
		t.Errorf("binding a wrong shape: %v", err)
	}
	if err := b.BindOutput("nope", y); err == nil || !strings.Contains(err.Error(), `unknown output "nope"`) {
		t.Errorf("binding an unknown output: %v", err)
	}
	if err := b.Swap("x", "nope"); err == nil {
		t.Error("swap with an unbound output: no error")
	}
}

// The train-step shape of the loop: parameter swapped with its .next, a scalar step counter
// swapped with step.next, scalars read back.
func TestBindingScalarsAndSwap(t *testing.T) {
	requireORT(t)
	s, err := NewSessionFromBytes("mixed", mixedModel(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.NewBinding()
	if err != nil {
		t.Fatal(err)
	}
	xt, _ := tensorio.FromSlice([]int64{1, 3}, []float32{1, 2, 3})
	vals := map[string]*Value{}
	mk := func(v *Value, err error) *Value {
		if err != nil {
			t.Fatal(err)
		}
		vals[v.String()+string(rune('a'+len(vals)))] = v
		return v
	}
	x := mk(NewValue(xt))
	step := mk(NewValue(tensorio.Scalar(int64(0))))
	w := mk(NewValue(&Tensor{DType: tensorio.Float32, Shape: []int64{2}, Data: []float32{1, -1}}))
	defer func() {
		for _, v := range vals {
			v.Close()
		}
	}()
	for name, v := range map[string]*Value{"x": x, "step": step, "w": w} {
		if err := b.BindInput(name, v); err != nil {
			t.Fatal(err)
		}
	}
	outs, err := b.AllocOutputs()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range outs {
		vals["out:"+k] = v
	}
	if _, ok := outs["y"]; ok {
		t.Error("AllocOutputs bound the dynamic-shape output y")
	}
	for _, name := range []string{"s", "step.next", "h", "w.next"} {
		if outs[name] == nil {
			t.Errorf("AllocOutputs did not bind the fixed-shape output %q", name)
		}
	}
	for i := 0; i < 3; i++ {
		if err := b.Run(); err != nil {
			t.Fatal(err)
		}
		if err := b.Swap("step", "step.next"); err != nil {
			t.Fatal(err)
		}
		if err := b.Swap("w", "w.next"); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := b.Input("step").Scalar(); v != 3 {
		t.Errorf("step after 3 runs = %v", v)
	}
	if got := b.Input("w").Tensor().Float32s(); !reflect.DeepEqual(got, []float32{8, -8}) {
		t.Errorf("w after 3 doublings = %v", got)
	}
	if v, _ := b.Output("s").Scalar(); v != 6 {
		t.Errorf("s = %v", v)
	}
	if h, _ := b.Output("h").Tensor().AsFloat32(); !reflect.DeepEqual(h, []float32{4, -4}) {
		t.Errorf("h = %v", h)
	}
	// Setting a scalar input in place.
	if err := b.Input("step").SetScalar(100); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	if v, _ := b.Output("step.next").Scalar(); v != 101 {
		t.Errorf("step.next after SetScalar(100) = %v", v)
	}
	if err := b.Swap("x", "step.next"); err == nil || !strings.Contains(err.Error(), "swap") {
		t.Errorf("swap of mismatched values: %v", err)
	}
	// Closing the session closes the binding.
	s.Close()
	if err := b.Run(); err == nil {
		t.Error("run after the session closed: no error")
	}
}

func TestProfileAndOptions(t *testing.T) {
	requireORT(t)
	dir := t.TempDir()
	s, err := NewSessionFromBytes("add_one", addOneModel(t), &Options{
		ProfilePrefix: filepath.Join(dir, "prof"), DisableMemArena: true, DisableMemPattern: true,
		InterOpThreads: 1, OptLevel: OptDisabled,
	})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := tensorio.FromSlice([]int64{2, 3}, make([]float32, 6))
	if _, err := s.Run(map[string]*Tensor{"x": x}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	m, _ := filepath.Glob(filepath.Join(dir, "prof*.json"))
	if len(m) == 0 {
		t.Error("no profile written")
	}
}

func TestScanModelGarbage(t *testing.T) {
	for _, b := range [][]byte{{}, {0xff}, []byte("\x3a\xff\xff\xff\xff\x0f"), []byte("hello world")} {
		if _, _, err := scanModel(b); err == nil {
			t.Errorf("scanModel(%q): no error", b)
		}
	}
}
