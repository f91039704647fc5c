package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// FashionMNISTClasses are Fashion-MNIST's ten class names, by label.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// FashionMNISTDir is where Debian's dataset-fashion-mnist package puts the IDX files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// IDX is an unsigned-byte array read from an IDX file (the MNIST format).
type IDX struct {
	// Dims are the sizes of the dimensions, outermost first.
	Dims []int
	// Data holds the values in row-major order.
	Data []byte
}

// maxIDXBytes bounds what ReadIDX allocates.
const maxIDXBytes = 1 << 31

// ReadIDX reads an IDX file of unsigned bytes (type 0x08), gzip-compressed or not.
func ReadIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("%s: too short for an IDX file", path)
	}
	if magic[0] != 0 || magic[1] != 0 || magic[3] == 0 {
		return nil, fmt.Errorf("%s: not an IDX file (magic % x)", path, magic)
	}
	if magic[2] != 0x08 {
		return nil, fmt.Errorf("%s: IDX value type 0x%02x; only unsigned bytes (0x08) are read", path, magic[2])
	}
	x := &IDX{Dims: make([]int, magic[3])}
	n := int64(1)
	for i := range x.Dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("%s: truncated header", path)
		}
		x.Dims[i] = int(d)
		n *= int64(d)
		if n > maxIDXBytes {
			return nil, fmt.Errorf("%s: dimensions %v are larger than %d bytes", path, x.Dims[:i+1], int64(maxIDXBytes))
		}
	}
	x.Data = make([]byte, n)
	if _, err := io.ReadFull(r, x.Data); err != nil {
		return nil, fmt.Errorf("%s: holds fewer values than its dimensions %v say", path, x.Dims)
	}
	return x, nil
}

// IDXImport says what ImportIDX writes.
type IDXImport struct {
	// Images is an IDX file of N grayscale images (N x H x W); Labels one of N labels.
	Images, Labels string
	// Classes are the class names by label; the folders are the names with characters other
	// than letters, digits, '-' and '_' replaced by '_'.
	Classes []string
	// Out is the image folder to write: a sub-folder per class and classes.txt.
	Out string
	// PerClass, when > 0, keeps the first PerClass images of each class in file order.
	PerClass int
}

// FolderName turns a class name into a folder name: characters other than letters, digits,
// '-' and '_' become '_'.
func FolderName(class string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, class)
}

// ImportIDX writes IDX images as an image folder: Out/<class folder>/<index>.png, with a
// classes.txt naming each class. It writes a temporary folder beside Out and renames it into
// place; Out must not exist yet. It returns the number of images written per class.
func ImportIDX(opt IDXImport) ([]int, error) {
	imgs, err := ReadIDX(opt.Images)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDX(opt.Labels)
	if err != nil {
		return nil, err
	}
	if len(imgs.Dims) != 3 {
		return nil, fmt.Errorf("%s: dimensions %v; want images x height x width", opt.Images, imgs.Dims)
	}
	if len(labels.Dims) != 1 || labels.Dims[0] != imgs.Dims[0] {
		return nil, fmt.Errorf("%s: dimensions %v; want one label for each of the %d images of %s", opt.Labels, labels.Dims, imgs.Dims[0], opt.Images)
	}
	if len(opt.Classes) == 0 {
		return nil, fmt.Errorf("no class names given")
	}
	folders := map[string]bool{}
	for _, c := range opt.Classes {
		if folders[FolderName(c)] {
			return nil, fmt.Errorf("class names %v give the folder %q twice; make them differ in letters or digits", opt.Classes, FolderName(c))
		}
		folders[FolderName(c)] = true
	}
	if _, err := os.Stat(opt.Out); err == nil {
		return nil, fmt.Errorf("%s already exists; give a new folder", opt.Out)
	}
	parent := filepath.Dir(filepath.Clean(opt.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(opt.Out)+".tmp-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	var list strings.Builder
	for _, c := range opt.Classes {
		if err := os.Mkdir(filepath.Join(tmp, FolderName(c)), 0o755); err != nil {
			return nil, err
		}
		fmt.Fprintf(&list, "%s\t%s\n", FolderName(c), c)
	}
	if err := os.WriteFile(filepath.Join(tmp, ClassesFile), []byte(list.String()), 0o644); err != nil {
		return nil, err
	}
	h, w := imgs.Dims[1], imgs.Dims[2]
	counts := make([]int, len(opt.Classes))
	var buf bytes.Buffer
	for i, l := range labels.Data {
		if int(l) >= len(opt.Classes) {
			return nil, fmt.Errorf("%s: label %d of image %d has no class name (%d given)", opt.Labels, l, i, len(opt.Classes))
		}
		if opt.PerClass > 0 && counts[l] >= opt.PerClass {
			continue
		}
		img := &image.Gray{Pix: imgs.Data[i*h*w : (i+1)*h*w], Stride: w, Rect: image.Rect(0, 0, w, h)}
		buf.Reset()
		if err := png.Encode(&buf, img); err != nil {
			return nil, err
		}
		name := filepath.Join(tmp, FolderName(opt.Classes[l]), fmt.Sprintf("%05d.png", i))
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
		counts[l]++
	}
	for c, n := range counts {
		if n == 0 {
			return nil, fmt.Errorf("%s: no image of class %d (%s); check the class names", opt.Labels, c, opt.Classes[c])
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, opt.Out); err != nil {
		return nil, err
	}
	ok = true
	return counts, nil
}
