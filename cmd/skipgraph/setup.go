package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/skipgraph/skipgraph/errs"
	ort "github.com/skipgraph/skipgraph/runtime"
)

func init() {
	register(&command{
		name:    "setup",
		summary: "check the ONNX Runtime library; with --cuda, install its CUDA provider libraries beside it",
		usage:   "[--cuda] [--dir DIR] [--download]",
		example: "SKIPGRAPH_CUDA_PROVIDER_DIR=$VENV/lib/python3.12/site-packages/onnxruntime/capi skipgraph setup --cuda\n" +
			"skipgraph setup --cuda --download   # fetch ONNX Runtime's Linux x64 GPU release archive",
		flags: func(fs *flag.FlagSet) func([]string) error {
			cuda := fs.Bool("cuda", false, "install libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of ONNX Runtime "+ort.ORTVersion+" from $"+ort.CUDAProviderDirEnv+", $"+ort.CUDAArchiveEnv+" or (with --download) the release archive")
			dir := fs.String("dir", "", "folder to install the providers into (default: the folder of the loaded libonnxruntime, where ONNX Runtime looks for them)")
			download := fs.Bool("download", false, "with --cuda and no local source: download "+ort.CUDAReleaseURL)
			return func(args []string) error {
				if len(args) != 0 {
					return usageError("setup", "setup takes no arguments")
				}
				if err := ort.Init(); err != nil {
					return errs.AsInput(err)
				}
				fmt.Fprintf(out, "onnxruntime %s (%s)\n", ort.Version(), ort.LibraryPath())
				if !*cuda {
					return nil
				}
				c := ort.CUDASetupFromEnv()
				c.Dest = filepath.Dir(ort.LibraryPath()) // ORT loads its providers from its own folder
				if *dir != "" {
					c.Dest = *dir
				}
				if *download {
					c.Download = httpDownload
				}
				res, err := ort.SetupCUDA(c)
				if err != nil {
					return err
				}
				if !res.Installed {
					fmt.Fprintf(out, "cuda providers already installed in %s (sha256 as in %s)\n", res.Dir, ort.CUDALockFile)
					return nil
				}
				fmt.Fprintf(out, "cuda providers installed in %s from %s\n", res.Dir, res.Source)
				for _, name := range ort.CUDAProviderFiles {
					fmt.Fprintf(out, "  %s  %s\n", res.SHA256[name], name)
				}
				if res.Unpinned {
					fmt.Fprintf(out, "note: no checksum was pinned for this source; the files were checked for ONNX Runtime %s's version string and provider entry points, and %s now pins the sha256 above\n", ort.ORTVersion, ort.CUDALockFile)
				}
				return nil
			}
		},
	})
}

// httpDownload fetches url into the file dst.
func httpDownload(url, dst string) error {
	cl := &http.Client{Timeout: 30 * time.Minute}
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
