package pluginpb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/skipgraph/skipgraph/internal/testenv"
)

// TestGeneratedCurrent: the committed Go files are what protoc, with the protoc-gen-go and
// protoc-gen-go-grpc versions go.mod pins, generates from plugin.proto.
func TestGeneratedCurrent(t *testing.T) {
	protoc := testenv.Program(t, "SKIPGRAPH_REQUIRE_PROTOC", "protobuf-compiler", "protoc")
	bin, out := t.TempDir(), t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "google.golang.org/protobuf/cmd/protoc-gen-go", "google.golang.org/grpc/cmd/protoc-gen-go-grpc")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the generators: %v\n%s", err, b)
	}
	gen := exec.Command(protoc, "--plugin=protoc-gen-go="+filepath.Join(bin, "protoc-gen-go"), "--plugin=protoc-gen-go-grpc="+filepath.Join(bin, "protoc-gen-go-grpc"),
		"--go_out="+out, "--go_opt=paths=source_relative", "--go-grpc_out="+out, "--go-grpc_opt=paths=source_relative", "plugin.proto")
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	for _, f := range []string{"plugin.pb.go", "plugin_grpc.pb.go"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale (%v); run go generate ./plugin/pluginpb", f, err)
		}
	}
}
