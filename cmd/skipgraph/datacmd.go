package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/data"
	"github.com/skipgraph/skipgraph/errs"
)

func init() {
	register(&command{
		name:    "data",
		summary: "data set tools: import-idx writes IDX files (MNIST, Fashion-MNIST) as an image folder",
		usage:   "import-idx --images FILE --labels FILE -o DIR [--names fashion-mnist|digits|A,B,...] [--per-class N]",
		example: "d=" + data.FashionMNISTDir + "\n" +
			"skipgraph data import-idx --images $d/train-images-idx3-ubyte.gz --labels $d/train-labels-idx1-ubyte.gz -o fmnist/train --per-class 16\n" +
			"skipgraph data import-idx --images $d/t10k-images-idx3-ubyte.gz --labels $d/t10k-labels-idx1-ubyte.gz -o fmnist/test --per-class 100",
		flags: func(fs *flag.FlagSet) func([]string) error {
			images := fs.String("images", "", "IDX file of images (N x H x W unsigned bytes, gzip or not)")
			labels := fs.String("labels", "", "IDX file of the N labels")
			o := fs.String("o", "", "image folder to write (must not exist): a folder per class and classes.txt")
			names := fs.String("names", "fashion-mnist", "class names by label: fashion-mnist, digits, or a comma-separated list")
			perClass := fs.Int("per-class", 0, "keep the first N images of each class (0: all)")
			return func(args []string) error {
				if len(args) != 1 || args[0] != "import-idx" {
					return usageError("data", "the only data tool is import-idx")
				}
				if *images == "" || *labels == "" || *o == "" {
					return usageError("data", "import-idx needs --images, --labels and -o")
				}
				if *perClass < 0 {
					return usageError("data", "--per-class %d: want 0 (all) or more", *perClass)
				}
				var classes []string
				switch *names {
				case "fashion-mnist":
					classes = data.FashionMNISTClasses
				case "digits":
					classes = strings.Fields("0 1 2 3 4 5 6 7 8 9")
				default:
					for _, n := range strings.Split(*names, ",") {
						if n = strings.TrimSpace(n); n != "" {
							classes = append(classes, n)
						}
					}
				}
				counts, err := data.ImportIDX(data.IDXImport{Images: *images, Labels: *labels, Classes: classes, Out: *o, PerClass: *perClass})
				if err != nil {
					return errs.AsInput(err)
				}
				total := 0
				for _, n := range counts {
					total += n
				}
				fmt.Fprintf(out, "wrote %d images of %d classes into %s (class names in %s)\n", total, len(classes), *o, filepath.Join(*o, data.ClassesFile))
				return nil
			}
		},
	})
}
