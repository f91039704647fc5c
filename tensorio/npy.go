package tensorio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/internal/atomicfile"
	"github.com/skipgraph/skipgraph/internal/safeio"
)

var npyMagic = []byte("\x93NUMPY")

// maxNPYHeader bounds the header length this package accepts (NumPy itself caps it far lower).
const maxNPYHeader = 1 << 20

// npyDescr maps NumPy type strings (without the byte-order character) to dtypes.
var npyDescr = map[string]DType{
	"f4": Float32, "f8": Float64, "f2": Float16,
	"i8": Int64, "i4": Int32, "i2": Int16, "i1": Int8,
	"u8": Uint64, "u4": Uint32, "u2": Uint16, "u1": Uint8,
	"b1": Bool,
}

// ReadNPY reads one array in NumPy .npy format (versions 1.0, 2.0 and 3.0; little-endian or
// byte-order-free types; C order). BFloat16 has no .npy type and is never returned.
func ReadNPY(r io.Reader) (*Tensor, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("npy: reading magic: %w", noEOF(err))
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return nil, errors.New("npy: not a .npy file (bad magic)")
	}
	major, minor := pre[6], pre[7]
	var hlen int64
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		hlen = int64(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: reading header length: %w", noEOF(err))
		}
		hlen = int64(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	if hlen > maxNPYHeader {
		return nil, fmt.Errorf("npy: header length %d is implausibly large", hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("npy: reading %d-byte header: %w", hlen, noEOF(err))
	}
	dt, shape, err := parseNPYHeader(string(hdr))
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	n, err := NumElementsOf(shape)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	want := n * int64(dt.Size())
	// Grow the buffer only as data arrives, so a header claiming a huge array cannot make us
	// allocate more than the input really holds.
	var buf bytes.Buffer
	got, err := io.CopyN(&buf, r, want)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("npy: data truncated: %v%v needs %d bytes, file has %d", dt, shape, want, got)
		}
		return nil, fmt.Errorf("npy: reading data: %w", err)
	}
	return FromBytes(dt, shape, buf.Bytes())
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseNPYHeader parses the Python dict literal of a .npy header.
func parseNPYHeader(h string) (DType, []int64, error) {
	p := &pyParser{s: h}
	fields, err := p.dict()
	if err != nil {
		return 0, nil, fmt.Errorf("bad header %q: %w", clip(h), err)
	}
	descr, ok := fields["descr"].(string)
	if !ok {
		return 0, nil, fmt.Errorf("header %q has no string 'descr'", clip(h))
	}
	fortran, ok := fields["fortran_order"].(bool)
	if !ok {
		return 0, nil, fmt.Errorf("header %q has no boolean 'fortran_order'", clip(h))
	}
	shape, ok := fields["shape"].([]int64)
	if !ok {
		return 0, nil, fmt.Errorf("header %q has no integer tuple 'shape'", clip(h))
	}
	if fortran {
		return 0, nil, errors.New("array is in Fortran order; save it in C order (numpy.ascontiguousarray)")
	}
	dt, err := parseDescr(descr)
	if err != nil {
		return 0, nil, err
	}
	return dt, shape, nil
}

func parseDescr(d string) (DType, error) {
	if d == "?" || d == "|?" || d == "b1" {
		return Bool, nil
	}
	if d == "" {
		return 0, errors.New("empty dtype descr")
	}
	order, code := d[0], d[1:]
	switch order {
	case '<', '|', '=':
	case '>':
		if npyDescr[code].Size() > 1 {
			return 0, fmt.Errorf("dtype %q is big-endian; save it little-endian (array.astype('<%s'))", d, code)
		}
	default:
		order, code = '|', d
	}
	dt, ok := npyDescr[code]
	if !ok {
		return 0, fmt.Errorf("unsupported dtype %q (want f4, f8, f2, i8, i4, i2, i1, u8, u4, u2, u1 or b1)", d)
	}
	if order == '|' && dt.Size() > 1 {
		return 0, fmt.Errorf("dtype %q has no byte order", d)
	}
	return dt, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// pyParser parses the small subset of Python literals used in .npy headers: a dict with string
// keys whose values are strings, True/False, integers or tuples of integers.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) ws() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) eat(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyParser) dict() (map[string]any, error) {
	if !p.eat('{') {
		return nil, errors.New("want '{'")
	}
	out := map[string]any{}
	for {
		if p.eat('}') {
			break
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if !p.eat(':') {
			return nil, fmt.Errorf("want ':' after key %q", k)
		}
		v, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("duplicate key %q", k)
		}
		out[k] = v
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return nil, errors.New("want ',' or '}'")
		}
		break
	}
	p.ws()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("trailing characters after dict at offset %d", p.i)
	}
	return out, nil
}

func (p *pyParser) str() (string, error) {
	p.ws()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", errors.New("want a quoted string")
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, nil
}

func (p *pyParser) value() (any, error) {
	p.ws()
	if p.i >= len(p.s) {
		return nil, errors.New("missing value")
	}
	switch c := p.s[p.i]; {
	case c == '\'' || c == '"':
		return p.str()
	case c == '(':
		p.i++
		shape := []int64{}
		for {
			if p.eat(')') {
				return shape, nil
			}
			n, err := p.int()
			if err != nil {
				return nil, err
			}
			shape = append(shape, n)
			if p.eat(',') {
				continue
			}
			if !p.eat(')') {
				return nil, errors.New("want ',' or ')' in tuple")
			}
			return shape, nil
		}
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	default:
		return p.int()
	}
}

func (p *pyParser) int() (int64, error) {
	p.ws()
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == 'L') {
		p.i++
	}
	tok := strings.TrimSuffix(p.s[start:p.i], "L") // Python 2 long suffix
	n, err := strconv.ParseInt(tok, 10, 64)
	if err != nil || tok == "" {
		return 0, fmt.Errorf("want a non-negative integer at offset %d", start)
	}
	return n, nil
}

// WriteNPY writes t in .npy format, version 1.0 (2.0 if the header needs it), little-endian,
// C order. BFloat16 has no .npy type and is refused.
func WriteNPY(w io.Writer, t *Tensor) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	var descr string
	switch t.DType {
	case Bool:
		descr = "|b1"
	case Uint8:
		descr = "|u1"
	case Int8:
		descr = "|i1"
	case BFloat16:
		return errors.New("npy: bfloat16 has no .npy dtype; convert it with ToFloat32 first")
	default:
		for code, dt := range npyDescr {
			if dt == t.DType {
				descr = "<" + code
			}
		}
	}
	var sh strings.Builder
	sh.WriteByte('(')
	for i, d := range t.Shape {
		if i > 0 {
			sh.WriteString(", ")
		}
		sh.WriteString(strconv.FormatInt(d, 10))
	}
	if len(t.Shape) == 1 {
		sh.WriteByte(',')
	}
	sh.WriteByte(')')
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, sh.String())
	// Pad with spaces and end with '\n' so that magic+version+length+header is a multiple of 64.
	version, lenBytes := byte(1), 2
	if total := 6 + 2 + 2 + len(dict) + 1; total+63 >= 1<<16 {
		version, lenBytes = 2, 4
	}
	pre := 6 + 2 + lenBytes
	hlen := len(dict) + 1
	if pad := (pre + hlen) % 64; pad != 0 {
		hlen += 64 - pad
	}
	bw := bufio.NewWriter(w)
	bw.Write(npyMagic)
	bw.Write([]byte{version, 0})
	if lenBytes == 2 {
		binary.Write(bw, binary.LittleEndian, uint16(hlen))
	} else {
		binary.Write(bw, binary.LittleEndian, uint32(hlen))
	}
	bw.WriteString(dict)
	bw.WriteString(strings.Repeat(" ", hlen-len(dict)-1))
	bw.WriteByte('\n')
	raw, err := t.Bytes()
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if _, err := bw.Write(raw); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// LoadNPY reads the .npy file at path.
func LoadNPY(path string) (*Tensor, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := ReadNPY(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// SaveNPY writes t to path as .npy, through a temporary file in the same folder that is renamed
// into place, so a failure leaves no partial file behind.
func SaveNPY(path string, t *Tensor) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return WriteNPY(w, t) })
}

// WriteFileAtomic writes a file through write into a temporary file in path's folder and
// renames it to path (mode 0644), so that a failure leaves no partial file behind
// (atomicfile.WriteFrom); errors name path.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.WriteFrom(path, 0o644, write); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
