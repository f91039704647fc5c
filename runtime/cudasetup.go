package runtime

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/skipgraph/skipgraph/errs"
	"github.com/skipgraph/skipgraph/internal/atomicfile"
)

// CUDA provider setup: the two provider libraries of ONNX Runtime's CUDA execution provider go
// beside the cached core library (ORT loads them from the folder of libonnxruntime), with their
// sha256 recorded in CUDALockFile.

// CUDAProviderDirEnv names the environment variable that points at a folder holding both
// provider libraries (for example the onnxruntime/capi folder of the onnxruntime-gpu wheel of
// ORTVersion).
const CUDAProviderDirEnv = "SKIPGRAPH_CUDA_PROVIDER_DIR"

// CUDAArchiveEnv names the environment variable that points at a local copy of
// CUDAReleaseURL's archive.
const CUDAArchiveEnv = "SKIPGRAPH_CUDA_ARCHIVE"

// CUDAArchiveSHA256Env names the environment variable holding the archive's expected sha256.
const CUDAArchiveSHA256Env = "SKIPGRAPH_CUDA_ARCHIVE_SHA256"

// CUDAReleaseArchive is the name of ONNX Runtime's official Linux x64 GPU release archive of
// ORTVersion, and CUDAReleaseURL where it is published.
const (
	CUDAReleaseArchive = "onnxruntime-linux-x64-gpu-" + ORTVersion + ".tgz"
	CUDAReleaseURL     = "https://github.com/microsoft/onnxruntime/releases/download/v" + ORTVersion + "/" + CUDAReleaseArchive
)

// CUDALockFile is the file, beside the providers, that records their sha256 (sha256sum format).
// A later setup only installs files with these checksums; writing it before the first setup
// pins the build to install.
const CUDALockFile = "cuda-providers.sha256"

// CUDAProviderFiles are the provider libraries, in the order ORT loads them.
var CUDAProviderFiles = slices.Clone(cudaProviderLibs)

// providerSymbol is a dynamic symbol each provider library must export.
var providerSymbol = map[string]string{
	"libonnxruntime_providers_shared.so": "Provider_GetHost",
	"libonnxruntime_providers_cuda.so":   "GetProvider",
}

// CUDASetup says where the CUDA provider libraries come from and where they go.
type CUDASetup struct {
	// Dest is the folder of the core library (default: the folder of CachedLibraryPath).
	Dest string
	// ProviderDir, when set, is a folder holding both provider libraries.
	ProviderDir string
	// Archive, when set, is a local copy of the release archive; ArchiveSHA256 its expected
	// sha256 (optional; without it the archive itself is not checked, only its contents).
	Archive       string
	ArchiveSHA256 string
	// Download fetches url into the file dst; nil when nothing may be downloaded.
	Download func(url, dst string) error
}

// CUDASetupResult reports what SetupCUDA did.
type CUDASetupResult struct {
	Dir       string
	Source    string            // where the files came from ("installed" when nothing was done)
	SHA256    map[string]string // file name -> sha256
	Installed bool              // false when the files were already in place
	// Unpinned is set when nothing pinned the files' checksums before (no lock file, no
	// archive checksum): their version string and ELF form were checked, and the lock now
	// records them.
	Unpinned bool
}

// CUDASetupFromEnv returns a CUDASetup taking its sources from the environment.
func CUDASetupFromEnv() CUDASetup {
	return CUDASetup{
		Dest:          filepath.Dir(CachedLibraryPath()),
		ProviderDir:   os.Getenv(CUDAProviderDirEnv),
		Archive:       os.Getenv(CUDAArchiveEnv),
		ArchiveSHA256: strings.ToLower(strings.TrimSpace(os.Getenv(CUDAArchiveSHA256Env))),
	}
}

// SetupCUDA puts the CUDA provider libraries of ORTVersion into c.Dest. Sources, in order:
// c.ProviderDir, c.Archive, a download of CUDAReleaseURL. Every file is checked (an x86-64
// shared object exporting the provider's entry point; the CUDA provider carries exactly
// ORTVersion as its version string) and, when the lock file exists, against the lock's sha256.
// Files are written to temporary names and renamed. Nothing is done when the installed files
// already match the lock. Errors about the sources are input errors (exit code 2).
func SetupCUDA(c CUDASetup) (*CUDASetupResult, error) {
	if c.Dest == "" {
		c.Dest = filepath.Dir(CachedLibraryPath())
	}
	res := &CUDASetupResult{Dir: c.Dest, SHA256: map[string]string{}}
	lockPath := filepath.Join(c.Dest, CUDALockFile)
	lock, err := readLock(lockPath)
	if err != nil {
		return nil, err
	}
	if len(lock) > 0 && installedMatch(c.Dest, lock) {
		res.Source, res.SHA256 = "installed", lock
		return res, nil
	}
	work, err := os.MkdirTemp("", "skipgraph-cuda-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	src, err := c.gather(work)
	if err != nil {
		return nil, err
	}
	res.Source = src.from
	res.Unpinned = len(lock) == 0 && !src.pinned
	for _, name := range CUDAProviderFiles {
		p := src.files[name]
		if err := checkProviderFile(p, name); err != nil {
			return nil, errs.Input("cuda setup: %s from %s: %w; not installing it", name, src.from, err)
		}
		sum, err := fileSHA256(p)
		if err != nil {
			return nil, err
		}
		if want, ok := lock[name]; ok && want != sum {
			return nil, errs.Input("cuda setup: checksum mismatch for %s from %s: sha256 %s, but %s pins %s; not installing it (delete %s to install another build)", name, src.from, sum, lockPath, want, lockPath)
		}
		res.SHA256[name] = sum
	}
	if err := os.MkdirAll(c.Dest, 0o755); err != nil {
		return nil, err
	}
	for _, name := range CUDAProviderFiles {
		if err := installFile(src.files[name], filepath.Join(c.Dest, name), 0o755); err != nil {
			return nil, err
		}
	}
	var lb bytes.Buffer
	for _, name := range CUDAProviderFiles {
		fmt.Fprintf(&lb, "%s  %s\n", res.SHA256[name], name)
	}
	if err := atomicfile.Write(lockPath, lb.Bytes()); err != nil {
		return nil, err
	}
	res.Installed = true
	return res, nil
}

// source is a set of candidate provider files.
type source struct {
	from   string
	files  map[string]string
	pinned bool // an expected checksum covered them
}

// gather finds the provider files in the first source that is set.
func (c CUDASetup) gather(work string) (*source, error) {
	if c.ProviderDir != "" {
		src := &source{from: CUDAProviderDirEnv + "=" + c.ProviderDir, files: map[string]string{}}
		var missing []string
		for _, name := range CUDAProviderFiles {
			p := filepath.Join(c.ProviderDir, name)
			if !fileExists(p) {
				missing = append(missing, name)
			}
			src.files[name] = p
		}
		if len(missing) > 0 {
			return nil, errs.Input("cuda setup: %s not found in %s=%s; point it at a folder holding both provider libraries of ONNX Runtime %s (e.g. site-packages/onnxruntime/capi of onnxruntime-gpu==%s)", strings.Join(missing, " and "), CUDAProviderDirEnv, c.ProviderDir, ORTVersion, ORTVersion)
		}
		return src, nil
	}
	archive, from := c.Archive, CUDAArchiveEnv+"="+c.Archive
	if archive == "" {
		if c.Download == nil {
			return nil, errs.Input("cuda setup: no source for the CUDA provider libraries of ONNX Runtime %s: set %s to a folder holding libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so (e.g. site-packages/onnxruntime/capi of onnxruntime-gpu==%s), or download %s and set %s to it", ORTVersion, CUDAProviderDirEnv, ORTVersion, CUDAReleaseURL, CUDAArchiveEnv)
		}
		archive, from = filepath.Join(work, CUDAReleaseArchive), CUDAReleaseURL
		if err := c.Download(CUDAReleaseURL, archive); err != nil {
			return nil, errs.Input("cuda setup: cannot download %s: %s; download it elsewhere and set %s to the file, or set %s to a folder holding both provider libraries of ONNX Runtime %s", CUDAReleaseURL, oneLine(err), CUDAArchiveEnv, CUDAProviderDirEnv, ORTVersion)
		}
	}
	if !fileExists(archive) {
		return nil, errs.Input("cuda setup: %s: no such file; download %s there", from, CUDAReleaseURL)
	}
	src := &source{from: from, files: map[string]string{}}
	if c.ArchiveSHA256 != "" {
		sum, err := fileSHA256(archive)
		if err != nil {
			return nil, err
		}
		if sum != c.ArchiveSHA256 {
			return nil, errs.Input("cuda setup: checksum mismatch for %s: sha256 %s, %s says %s; not installing from it", from, sum, CUDAArchiveSHA256Env, c.ArchiveSHA256)
		}
		src.pinned = true
	}
	if err := extractProviders(archive, work, src.files); err != nil {
		return nil, errs.Input("cuda setup: %s: %w", from, err)
	}
	return src, nil
}

// extractProviders copies the provider libraries out of a release archive (members
// <top>/lib/<name>) into dir.
func extractProviders(archive, dir string, files map[string]string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return fmt.Errorf("not a gzip archive: %s", oneLine(err))
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %s", oneLine(err))
		}
		name := path.Base(h.Name)
		if !slices.Contains(CUDAProviderFiles, name) || path.Base(path.Dir(h.Name)) != "lib" || h.Typeflag != tar.TypeReg {
			continue
		}
		dst := filepath.Join(dir, name)
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		files[name] = dst
	}
	var missing []string
	for _, name := range CUDAProviderFiles {
		if files[name] == "" {
			missing = append(missing, "lib/"+name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s not in the archive; it must be ONNX Runtime's %s", strings.Join(missing, " and "), CUDAReleaseArchive)
	}
	return nil
}

// versionString matches the version strings of ONNX Runtime releases 1.10 and later as they sit
// in a library's read-only data: NUL, major.minor.patch, NUL.
var versionString = regexp.MustCompile(`\x001\.[1-9][0-9]\.[0-9]+\x00`)

// checkProviderFile checks that p is an x86-64 ELF shared object exporting the provider's entry
// point and, for the CUDA provider, that the ONNX Runtime version it carries is ORTVersion.
func checkProviderFile(p, name string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("not an ELF shared object: %s", oneLine(err))
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_DYN {
		return fmt.Errorf("is %v %v, want an x86-64 shared object", f.Machine, f.Type)
	}
	syms, _ := f.DynamicSymbols()
	want := providerSymbol[name]
	if !slices.ContainsFunc(syms, func(s elf.Symbol) bool { return s.Name == want && s.Section != elf.SHN_UNDEF }) {
		return fmt.Errorf("does not export %s: not an ONNX Runtime provider library", want)
	}
	if name != "libonnxruntime_providers_cuda.so" {
		return nil
	}
	found, err := versionStrings(p)
	if err != nil {
		return err
	}
	if !slices.Contains(found, ORTVersion) {
		if len(found) == 0 {
			return fmt.Errorf("carries no ONNX Runtime version string; want a build of %s", ORTVersion)
		}
		return fmt.Errorf("is ONNX Runtime %s, the core library is %s; provider and core must be the same release", strings.Join(found, ", "), ORTVersion)
	}
	if len(found) > 1 {
		return fmt.Errorf("carries several ONNX Runtime versions (%s); want exactly %s", strings.Join(found, ", "), ORTVersion)
	}
	return nil
}

// ProviderVersion returns the ONNX Runtime version a CUDA provider library carries ("" when it
// carries none or several).
func ProviderVersion(p string) string {
	found, err := versionStrings(p)
	if err != nil || len(found) != 1 {
		return ""
	}
	return found[0]
}

// versionStrings returns the distinct version strings in the file, read in overlapping chunks.
func versionStrings(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const chunk, overlap = 1 << 20, 16
	buf := make([]byte, chunk+overlap)
	var found []string
	keep := 0
	for {
		n, err := io.ReadFull(f, buf[keep:])
		n += keep
		for _, m := range versionString.FindAll(buf[:n], -1) {
			v := string(m[1 : len(m)-1])
			if !slices.Contains(found, v) {
				found = append(found, v)
			}
		}
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		keep = min(overlap, n)
		copy(buf, buf[n-keep:n])
	}
	slices.Sort(found)
	return found, nil
}

// readLock reads a sha256sum-format lock file (absent: nil).
func readLock(p string) (map[string]string, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lock := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		name := strings.TrimPrefix(f[len(f)-1], "*")
		if len(f) != 2 || len(f[0]) != 64 || !slices.Contains(CUDAProviderFiles, name) {
			return nil, errs.Input("cuda setup: %s line %d: want \"<sha256>  <provider file name>\"; fix or delete the file", p, i+1)
		}
		if _, err := hex.DecodeString(f[0]); err != nil {
			return nil, errs.Input("cuda setup: %s line %d: %q is not a sha256; fix or delete the file", p, i+1, f[0])
		}
		lock[name] = strings.ToLower(f[0])
	}
	return lock, nil
}

// installedMatch reports whether every provider file in dir matches the lock.
func installedMatch(dir string, lock map[string]string) bool {
	for _, name := range CUDAProviderFiles {
		want, ok := lock[name]
		if !ok {
			return false
		}
		got, err := fileSHA256(filepath.Join(dir, name))
		if err != nil || got != want {
			return false
		}
	}
	return true
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// installFile copies src to dst through a temporary file in dst's folder and a rename.
func installFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.WriteFrom(dst, mode, func(w io.Writer) error { _, err := io.Copy(w, in); return err })
}
