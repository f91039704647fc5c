package runtime

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skipgraph/skipgraph/errs"
)

// fakeProviders builds two small shared objects that look like the provider libraries to the
// checks (entry point exported; the CUDA one carries version) in a new folder.
func fakeProviders(t *testing.T, version, tag string) string {
	t.Helper()
	dir := t.TempDir()
	srcs := map[string]string{
		"libonnxruntime_providers_shared.so": "void* Provider_GetHost(void) { return 0; }\nconst char* tag = \"" + tag + "\";\n",
		"libonnxruntime_providers_cuda.so":   "const char* version = \"" + version + "\";\nconst char* tag = \"" + tag + "\";\nvoid* GetProvider(void) { return (void*)version; }\n",
	}
	for name, code := range srcs {
		c := filepath.Join(dir, name+".c")
		if err := os.WriteFile(c, []byte(code), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cc", "-shared", "-fPIC", "-o", filepath.Join(dir, name), c).CombinedOutput(); err != nil {
			t.Fatalf("cc: %v\n%s", err, out)
		}
		os.Remove(c)
	}
	return dir
}

// releaseArchive packs dir's provider libraries as the release archive lays them out.
func releaseArchive(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), CUDAReleaseArchive)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	top := strings.TrimSuffix(CUDAReleaseArchive, ".tgz")
	for _, name := range append([]string{"libonnxruntime.so.1"}, CUDAProviderFiles...) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if name == "libonnxruntime.so.1" {
			b = []byte("core")
		} else if err != nil {
			continue
		}
		tw.WriteHeader(&tar.Header{Name: top + "/lib/" + name, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	tw.Close()
	gz.Close()
	f.Close()
	return p
}

func TestSetupCUDA(t *testing.T) {
	good := fakeProviders(t, ORTVersion, "a")
	other := fakeProviders(t, ORTVersion, "b") // same version, another build
	old := fakeProviders(t, "1.29.0", "a")
	archive := releaseArchive(t, good)
	archiveSum, _ := fileSHA256(archive)
	notLib := t.TempDir()
	for _, name := range CUDAProviderFiles {
		os.WriteFile(filepath.Join(notLib, name), []byte("not a library"), 0o644)
	}
	half := t.TempDir()
	b, _ := os.ReadFile(filepath.Join(good, "libonnxruntime_providers_cuda.so"))
	os.WriteFile(filepath.Join(half, "libonnxruntime_providers_cuda.so"), b, 0o755)

	offline := func(url, dst string) error { return errors.New("network is unreachable") }
	download := func(url, dst string) error {
		if url != CUDAReleaseURL {
			t.Errorf("downloads %s, want %s", url, CUDAReleaseURL)
		}
		b, err := os.ReadFile(archive)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}
	cases := []struct {
		name     string
		setups   []CUDASetup // run in order into the same Dest; the last one is judged
		wantErr  []string    // substrings of the input error; nil: success
		source   string
		unpinned bool
	}{
		{name: "provider dir", setups: []CUDASetup{{ProviderDir: good}}, source: CUDAProviderDirEnv, unpinned: true},
		{name: "idempotent", setups: []CUDASetup{{ProviderDir: good}, {}}, source: "installed"},
		{name: "same build again", setups: []CUDASetup{{ProviderDir: good}, {ProviderDir: good}}, source: "installed"},
		{name: "local archive pinned", setups: []CUDASetup{{Archive: archive, ArchiveSHA256: archiveSum}}, source: CUDAArchiveEnv},
		{name: "download", setups: []CUDASetup{{Download: download}}, source: CUDAReleaseURL, unpinned: true},
		{name: "another build refused", setups: []CUDASetup{{ProviderDir: good}, {ProviderDir: other, Dest: "corrupt"}},
			wantErr: []string{"checksum mismatch", "libonnxruntime_providers_", CUDALockFile, "not installing"}},
		{name: "archive checksum mismatch", setups: []CUDASetup{{Archive: archive, ArchiveSHA256: strings.Repeat("0", 64)}},
			wantErr: []string{"checksum mismatch", CUDAReleaseArchive, CUDAArchiveSHA256Env}},
		{name: "other ORT version", setups: []CUDASetup{{ProviderDir: old}},
			wantErr: []string{"libonnxruntime_providers_cuda.so", "1.29.0", ORTVersion, "same release"}},
		{name: "not a library", setups: []CUDASetup{{ProviderDir: notLib}}, wantErr: []string{"not an ELF shared object"}},
		{name: "missing file", setups: []CUDASetup{{ProviderDir: half}},
			wantErr: []string{"libonnxruntime_providers_shared.so not found", CUDAProviderDirEnv, "onnxruntime-gpu==" + ORTVersion}},
		{name: "no source", setups: []CUDASetup{{}}, wantErr: []string{"no source", CUDAProviderDirEnv, CUDAReleaseURL, CUDAArchiveEnv}},
		{name: "offline", setups: []CUDASetup{{Download: offline}}, wantErr: []string{"cannot download", CUDAReleaseURL, "network is unreachable", CUDAArchiveEnv}},
		{name: "missing archive", setups: []CUDASetup{{Archive: filepath.Join(good, "nope.tgz")}}, wantErr: []string{"no such file", CUDAReleaseURL}},
		{name: "archive without providers", setups: []CUDASetup{{Archive: releaseArchive(t, t.TempDir())}}, wantErr: []string{"not in the archive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "onnxruntime-"+ORTVersion)
			var res *CUDASetupResult
			var err error
			for _, c := range tc.setups {
				if c.Dest == "corrupt" {
					// a damaged install: the lock no longer matches, so the source is checked against it
					os.WriteFile(filepath.Join(dest, "libonnxruntime_providers_cuda.so"), []byte("damaged"), 0o755)
				}
				c.Dest = dest
				res, err = SetupCUDA(c)
			}
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want one with %q", tc.wantErr)
				}
				msg := err.Error()
				t.Log(msg)
				if !errs.IsInput(err) || strings.Contains(msg, "\n") {
					t.Errorf("want a one-line input error (exit 2), got %q", msg)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(msg, w) {
						t.Errorf("error lacks %q", w)
					}
				}
				if len(tc.setups) == 1 {
					if ents, _ := os.ReadDir(dest); len(ents) > 0 {
						t.Errorf("a refused setup left %d files in %s", len(ents), dest)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(res.Source, tc.source) || res.Unpinned != tc.unpinned {
				t.Errorf("source %q unpinned %v, want %q %v", res.Source, res.Unpinned, tc.source, tc.unpinned)
			}
			if res.Installed != (tc.source != "installed") {
				t.Errorf("installed = %v from %s", res.Installed, res.Source)
			}
			lock, err := readLock(filepath.Join(dest, CUDALockFile))
			if err != nil || !installedMatch(dest, lock) {
				t.Fatalf("lock %v does not match the installed files (%v)", lock, err)
			}
			for _, name := range CUDAProviderFiles {
				want, _ := fileSHA256(filepath.Join(good, name))
				if lock[name] != want || res.SHA256[name] != want {
					t.Errorf("%s: lock %s result %s, want %s", name, lock[name], res.SHA256[name], want)
				}
			}
			ents, _ := os.ReadDir(dest)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("temporary file %s left behind", e.Name())
				}
			}
		})
	}
}

// ProviderVersion reads the version a provider library carries.
func TestProviderVersion(t *testing.T) {
	dir := fakeProviders(t, "1.29.0", "x")
	if v := ProviderVersion(filepath.Join(dir, "libonnxruntime_providers_cuda.so")); v != "1.29.0" {
		t.Fatalf("version %q, want 1.29.0", v)
	}
	if v := ProviderVersion(filepath.Join(dir, "libonnxruntime_providers_shared.so")); v != "" {
		t.Fatalf("shared provider: version %q, want none", v)
	}
}
