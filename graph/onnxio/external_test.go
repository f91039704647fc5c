package onnxio_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/graph/onnxio"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"google.golang.org/protobuf/proto"
)

func TestExternalDataRoundTrip(t *testing.T) {
	dir := t.TempDir()
	m := testmodelSmall()
	ext := filepath.Join(dir, "ext.onnx")
	if err := onnxio.Save(m, ext, onnxio.SaveOptions{ExternalData: true}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(ext + ".data")
	if err != nil {
		t.Fatalf("no external data file: %v", err)
	}
	back, err := onnxio.Load(ext)
	if err != nil {
		t.Fatal(err)
	}
	assertSameModel(t, m, back)
	// The big tensors are outside, at aligned offsets; the small ones inside.
	var raw onnxpb.ModelProto
	b, _ := os.ReadFile(ext)
	if err := proto.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	outside := 0
	for _, tp := range raw.Graph.Initializer {
		size := int64(len(tp.RawData))
		if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			outside++
			kv := map[string]string{}
			for _, e := range tp.ExternalData {
				kv[e.GetKey()] = e.GetValue()
			}
			off, _ := strconv.ParseInt(kv["offset"], 10, 64)
			size, _ = strconv.ParseInt(kv["length"], 10, 64)
			if kv["location"] != "ext.onnx.data" || off%4096 != 0 || off+size > int64(len(data)) {
				t.Errorf("%s: external data %v", tp.GetName(), kv)
			}
			if size < 1024 {
				t.Errorf("%s: %d bytes went outside, under the threshold", tp.GetName(), size)
			}
		} else if size >= 1024 {
			t.Errorf("%s: %d bytes stayed inside", tp.GetName(), size)
		}
		if v := back.Graph.Value(tp.GetName()); v.Const.Location != "" && tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			t.Errorf("%s: Location %q for an inside tensor", tp.GetName(), v.Const.Location)
		}
	}
	if outside != 3 {
		t.Errorf("%d tensors outside, want 3 (W1, b1, W2)", outside)
	}
	// Re-saved without external data, it equals the model saved so directly.
	plain, inlined := filepath.Join(dir, "plain.onnx"), filepath.Join(dir, "inlined.onnx")
	if err := onnxio.Save(m, plain, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := onnxio.Save(back, inlined, onnxio.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	p1, _ := os.ReadFile(plain)
	p2, _ := os.ReadFile(inlined)
	if !bytes.Equal(p1, p2) {
		t.Fatalf("inlined model differs from the plain one at byte %d", firstDiff(p1, p2))
	}
	// Saving the externally stored model over itself, with external data again, keeps it intact.
	if err := onnxio.Save(back, ext, onnxio.SaveOptions{ExternalData: true, SizeThreshold: 100}); err != nil {
		t.Fatal(err)
	}
	again, err := onnxio.Load(ext)
	if err != nil {
		t.Fatal(err)
	}
	assertSameModel(t, m, again)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestExternalFileOption(t *testing.T) {
	dir := t.TempDir()
	m := testmodelSmall()
	p := filepath.Join(dir, "m.onnx")
	for _, bad := range []string{"../x.data", "/tmp/x.data", "a/../../x.data"} {
		err := onnxio.Save(m, p, onnxio.SaveOptions{ExternalData: true, ExternalFile: bad})
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ExternalFile %q: error %v", bad, err)
		}
	}
	if err := onnxio.Save(m, p, onnxio.SaveOptions{ExternalData: true, ExternalFile: "weights.bin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "weights.bin")); err != nil {
		t.Fatal(err)
	}
	back, err := onnxio.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	assertSameModel(t, m, back)
}

func TestExternalLocationRefused(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.bin")
	if err := os.WriteFile(outside, make([]byte, 16), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "short.bin"), make([]byte, 8), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, location, want string
	}{
		{"parent escape", "../../etc/passwd", "leaves the model's folder"},
		{"absolute", "/etc/passwd", "absolute path"},
		{"symlink escape", "link.bin", "symbolic link"},
		{"missing file", "nothere.bin", "does not exist"},
		{"too short", "short.bin", "past the end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.onnx")
			if err := os.WriteFile(p, reluModel(t, externalTensor("w", tc.location, 4)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := onnxio.Load(p)
			if err == nil {
				t.Fatal("loaded")
			}
			msg := err.Error()
			if !errs.IsInput(err) || strings.Contains(msg, "\n") || !strings.Contains(msg, p) ||
				!strings.Contains(msg, `"w"`) || !strings.Contains(msg, strconv.Quote(tc.location)) || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q (input error %v): want one line naming %s, tensor \"w\", %q and %q", msg, errs.IsInput(err), p, tc.location, tc.want)
			}
		})
	}
}
