package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime release the project's setup step fetches and tests against.
const ORTVersion = "1.30.0"

// LibraryEnv names the environment variable that, when set, is the path of the ONNX Runtime
// shared library to load.
const LibraryEnv = "ONNXRUNTIME_LIB"

// systemLibraryNames are handed to the dynamic loader, which searches its usual places.
var systemLibraryNames = []string{"libonnxruntime.so.1", "libonnxruntime.so"}

var (
	initOnce   sync.Once
	initErr    error
	loadedPath string
)

// CachedLibraryPath returns where scripts/fetch-ort.sh caches libonnxruntime.so.1:
// ${SKIPGRAPH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skipgraph}/onnxruntime-<ORTVersion>/libonnxruntime.so.1.
// The file may not exist.
func CachedLibraryPath() string {
	root := os.Getenv("SKIPGRAPH_CACHE")
	if root == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil || home == "" {
				home = "."
			}
			base = filepath.Join(home, ".cache")
		}
		root = filepath.Join(base, "skipgraph")
	}
	return filepath.Join(root, "onnxruntime-"+ORTVersion, "libonnxruntime.so.1")
}

// Init loads the ONNX Runtime library and creates the ORT environment. Only the first call does
// the work; later calls return its result, so it is safe to call from anywhere. Sessions and
// Values call it themselves.
func Init() error {
	initOnce.Do(func() {
		if ort.IsInitialized() {
			loadedPath = mappedLibraryPath("")
			return
		}
		var path string
		path, initErr = loadLibrary(os.Getenv(LibraryEnv), CachedLibraryPath(), fileExists, loadORT)
		if initErr == nil {
			loadedPath = mappedLibraryPath(path)
		}
	})
	return initErr
}

// LibraryPath returns the file of the ONNX Runtime library that Init loaded ("" before a
// successful Init).
func LibraryPath() string { return loadedPath }

// Version returns the loaded ONNX Runtime's version string ("" before a successful Init).
func Version() string {
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func loadORT(path string) error {
	ort.SetSharedLibraryPath(path)
	// ORT's own error log would print beside the one line that reports the same error (the
	// status of the failed call carries its message); SKIPGRAPH_DEBUG shows it
	level := ort.WithLogLevelFatal()
	if os.Getenv("SKIPGRAPH_DEBUG") != "" {
		level = ort.WithLogLevelError()
	}
	err := ort.InitializeEnvironment(level)
	if err != nil && strings.Contains(err.Error(), "ORT API base") {
		return fmt.Errorf("library is too old: onnxruntime_go needs ORT API 24 (ONNX Runtime 1.24 or newer; use %s)", ORTVersion)
	}
	return err
}

// loadLibrary tries the candidate libraries in order and returns the one that loaded, or one error
// line that lists what was tried and what to do.
func loadLibrary(env, cached string, exists func(string) bool, load func(string) error) (string, error) {
	if env != "" {
		if !exists(env) {
			return "", fmt.Errorf("onnxruntime: %s=%s: no such file; set %s to the path of libonnxruntime.so.1 (ONNX Runtime %s), or unset it and run \"make setup\"", LibraryEnv, env, LibraryEnv, ORTVersion)
		}
		if err := load(env); err != nil {
			return "", fmt.Errorf("onnxruntime: cannot load %s=%s: %s; point %s at a libonnxruntime.so.1 of ONNX Runtime %s, or unset it and run \"make setup\"", LibraryEnv, env, oneLine(err), LibraryEnv, ORTVersion)
		}
		return env, nil
	}
	tried := []string{LibraryEnv + " unset"}
	if exists(cached) {
		if err := load(cached); err == nil {
			return cached, nil
		} else {
			tried = append(tried, fmt.Sprintf("%s: %s", cached, oneLine(err)))
		}
	} else {
		tried = append(tried, cached+": not found")
	}
	for _, name := range systemLibraryNames {
		if err := load(name); err == nil {
			return name, nil
		} else {
			tried = append(tried, fmt.Sprintf("system %s: %s", name, oneLine(err)))
		}
	}
	return "", fmt.Errorf("onnxruntime: cannot load the ONNX Runtime library (tried %s); run \"make setup\" to fetch ONNX Runtime %s, or set %s to the path of libonnxruntime.so.1", strings.Join(tried, "; "), ORTVersion, LibraryEnv)
}

// mappedLibraryPath returns the absolute file of the libonnxruntime mapped into this process
// (from /proc/self/maps), or fallback when it cannot tell.
func mappedLibraryPath(fallback string) string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return fallback
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		p := line[i:]
		if strings.HasPrefix(filepath.Base(p), "libonnxruntime.so") {
			return p
		}
	}
	return fallback
}

// oneLine flattens an error message to a single line.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	s := strings.TrimSpace(err.Error())
	s = strings.ReplaceAll(s, "\r", "")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// ensureInit runs Init for callers that need the library.
func ensureInit() error {
	if err := Init(); err != nil {
		return err
	}
	if !ort.IsInitialized() {
		return errors.New("onnxruntime: environment is not initialised")
	}
	return nil
}
