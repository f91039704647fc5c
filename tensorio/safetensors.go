package tensorio

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// maxSafetensorsHeader bounds the header length ReadSafetensors accepts; the reference
// implementation refuses headers over 100 MB.
const maxSafetensorsHeader = 100_000_000

// safetensorsMetadataKey is the header key of the free-form string map.
const safetensorsMetadataKey = "__metadata__"

// safeDTypes lists the safetensors dtype names of the element types this package holds, in the
// order of the reference implementation's dtype enumeration (its writer lays tensors out by
// descending position in this list, then by name).
var safeDTypes = []struct {
	name string
	dt   DType
}{
	{"BOOL", Bool}, {"U8", Uint8}, {"I8", Int8}, {"I16", Int16}, {"U16", Uint16},
	{"F16", Float16}, {"BF16", BFloat16}, {"I32", Int32}, {"U32", Uint32}, {"F32", Float32},
	{"F64", Float64}, {"I64", Int64}, {"U64", Uint64},
}

func safeDTypeName(dt DType) (string, int, bool) {
	for i, s := range safeDTypes {
		if s.dt == dt {
			return s.name, i, true
		}
	}
	return "", 0, false
}

func parseSafeDType(name string) (DType, bool) {
	for _, s := range safeDTypes {
		if s.name == name {
			return s.dt, true
		}
	}
	return 0, false
}

// Safetensors is the content of a .safetensors file: named tensors and the optional string
// metadata of its header.
type Safetensors struct {
	Tensors  map[string]*Tensor
	Metadata map[string]string
}

// WriteSafetensors writes tensors in the safetensors format, laid out as the reference
// implementation lays them out, so that the same tensors and metadata give the same bytes: an
// 8-byte little-endian header length, a compact JSON header ("__metadata__" first, then the
// tensors in data order) padded with spaces to a multiple of 8 bytes, then the data. Tensors are
// ordered by descending dtype (U64, I64, F64, F32, ... BOOL) and then by name. Metadata keys,
// which the reference implementation keeps in a hash map, are written sorted.
func WriteSafetensors(w io.Writer, tensors map[string]*Tensor, metadata map[string]string) error {
	type entry struct {
		name string
		rank int
		t    *Tensor
	}
	entries := make([]entry, 0, len(tensors))
	for name, t := range tensors {
		if name == safetensorsMetadataKey {
			return fmt.Errorf("safetensors: a tensor may not be named %q", name)
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		_, rank, ok := safeDTypeName(t.DType)
		if !ok {
			return fmt.Errorf("safetensors: tensor %q: dtype %v has no safetensors name", name, t.DType)
		}
		entries = append(entries, entry{name, rank, t})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].rank != entries[j].rank {
			return entries[i].rank > entries[j].rank
		}
		return entries[i].name < entries[j].name
	})
	var h bytes.Buffer
	h.WriteByte('{')
	if metadata != nil {
		writeJSONString(&h, safetensorsMetadataKey)
		h.WriteString(":{")
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	var off int64
	for i, e := range entries {
		if i > 0 || metadata != nil {
			h.WriteByte(',')
		}
		name, _, _ := safeDTypeName(e.t.DType)
		writeJSONString(&h, e.name)
		h.WriteString(`:{"dtype":"` + name + `","shape":[`)
		for j, d := range e.t.Shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.FormatInt(d, 10))
		}
		n := int64(e.t.Len()) * int64(e.t.DType.Size())
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+n)
		off += n
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	bw := bufio.NewWriter(w)
	var size [8]byte
	binary.LittleEndian.PutUint64(size[:], uint64(h.Len()))
	bw.Write(size[:])
	bw.Write(h.Bytes())
	for _, e := range entries {
		raw, err := e.t.Bytes()
		if err != nil {
			return fmt.Errorf("safetensors: tensor %q: %w", e.name, err)
		}
		if _, err := bw.Write(raw); err != nil {
			return fmt.Errorf("safetensors: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}

// writeJSONString writes s as a JSON string the way serde_json does: only '"', '\\' and control
// characters are escaped; other characters, non-ASCII included, are written as they are.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

// safeInfo is one tensor's header entry.
type safeInfo struct {
	DType       string   `json:"dtype"`
	Shape       []int64  `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// ReadSafetensors reads a whole safetensors file. It checks what the reference implementation
// checks: the header is a JSON object, every dtype is known, every tensor's byte range matches
// its shape, and the ranges cover the data without gaps or overlaps.
func ReadSafetensors(r io.Reader) (*Safetensors, error) {
	var size [8]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, fmt.Errorf("safetensors: reading header length: %w", noEOF(err))
	}
	n := binary.LittleEndian.Uint64(size[:])
	if n > maxSafetensorsHeader {
		return nil, fmt.Errorf("safetensors: header length %d is implausibly large (not a safetensors file?)", n)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("safetensors: reading %d-byte header: %w", n, noEOF(err))
	}
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, errors.New("safetensors: header is not a JSON object (not a safetensors file?)")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("safetensors: bad header JSON: %w", err)
	}
	if rest := strings.TrimRight(string(hdr[dec.InputOffset():]), " "); rest != "" {
		return nil, errors.New("safetensors: trailing bytes after the header JSON")
	}
	out := &Safetensors{Tensors: map[string]*Tensor{}}
	type span struct {
		name       string
		begin, end uint64
		dt         DType
		shape      []int64
	}
	var spans []span
	for name, v := range raw {
		if name == safetensorsMetadataKey {
			if err := json.Unmarshal(v, &out.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors: %s is not a map of strings: %w", safetensorsMetadataKey, err)
			}
			continue
		}
		var info safeInfo
		if err := json.Unmarshal(v, &info); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: bad header entry: %w", name, err)
		}
		dt, ok := parseSafeDType(info.DType)
		if !ok {
			return nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q", name, info.DType)
		}
		if len(info.DataOffsets) != 2 || info.DataOffsets[0] > info.DataOffsets[1] {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets %v is not [begin, end]", name, info.DataOffsets)
		}
		if info.Shape == nil {
			return nil, fmt.Errorf("safetensors: tensor %q: no shape", name)
		}
		elems, err := NumElementsOf(info.Shape)
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		if want := uint64(elems) * uint64(dt.Size()); info.DataOffsets[1]-info.DataOffsets[0] != want {
			return nil, fmt.Errorf("safetensors: tensor %q: %s%v needs %d bytes, data_offsets %v hold %d", name, info.DType, info.Shape, want, info.DataOffsets, info.DataOffsets[1]-info.DataOffsets[0])
		}
		spans = append(spans, span{name, info.DataOffsets[0], info.DataOffsets[1], dt, info.Shape})
	}
	slices.SortFunc(spans, func(a, b span) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var end uint64
	for _, s := range spans {
		if s.begin != end {
			return nil, fmt.Errorf("safetensors: tensor %q: data starts at %d, expected %d (gap or overlap)", s.name, s.begin, end)
		}
		end = s.end
	}
	// Grow the buffer only as data arrives, so a header claiming a huge tensor cannot make us
	// allocate more than the input holds.
	var data bytes.Buffer
	got, err := io.CopyN(&data, r, int64(end))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("safetensors: data truncated: the header describes %d bytes, the file has %d", end, got)
		}
		return nil, fmt.Errorf("safetensors: reading data: %w", err)
	}
	var one [1]byte
	if k, _ := io.ReadFull(r, one[:]); k > 0 {
		return nil, fmt.Errorf("safetensors: bytes after the %d data bytes the header describes", end)
	}
	buf := data.Bytes()
	for _, s := range spans {
		t, err := FromBytes(s.dt, s.shape, buf[s.begin:s.end])
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", s.name, err)
		}
		out.Tensors[s.name] = t
	}
	return out, nil
}

// LoadSafetensors reads the safetensors file at path.
func LoadSafetensors(path string) (*Safetensors, error) {
	f, err := safeio.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := ReadSafetensors(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// SaveSafetensors writes tensors and metadata to path through a temporary file in the same
// folder that is renamed into place.
func SaveSafetensors(path string, tensors map[string]*Tensor, metadata map[string]string) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return WriteSafetensors(w, tensors, metadata) })
}
