package onnxio

import (
	"os"
	"runtime"
	"sync"
)

// mapping is one file's bytes as seen by the decoder: a memory mapping made by Load (mmapped
// true), or bytes handed to Decode.
type mapping struct {
	data    []byte
	mmapped bool
	// file is the mapped file, kept open while mapped so that writes can copy from it
	// inside the kernel.
	file *os.File
}

// release drops the resident pages of b, a part of this mapping that has just been copied out.
func (m *mapping) release(b []byte) {
	if m != nil && m.mmapped {
		dropPages(b)
	}
}

// mapSet is the list of mappings a decoded model depends on. It is kept apart from resources so
// that the cleanup, which receives it, does not keep the resources alive.
type mapSet struct {
	mu   sync.Mutex
	list []*mapping
}

// resources holds what a decoded model reads its weights from: the model file's mapping and the
// mappings of its external data files. Every lazy tensor, the Model's Src and the Graph's Src
// refer to it; once none of them is reachable, a cleanup unmaps the files.
type resources struct {
	// name is the model file (or a description of in-memory data) for messages.
	name string
	// dir is the folder external data is resolved against.
	dir string
	// ext maps a cleaned external data location to its mapping.
	ext  map[string]*mapping
	maps *mapSet
}

// newResources returns resources whose mappings are unmapped when they become unreachable.
func newResources(name, dir string) *resources {
	r := &resources{name: name, dir: dir, ext: map[string]*mapping{}, maps: &mapSet{}}
	runtime.AddCleanup(r, func(s *mapSet) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.list {
			unmap(m)
		}
		s.list = nil
	}, r.maps)
	return r
}

// add records a mapping to be unmapped with the resources.
func (r *resources) add(m *mapping) {
	if !m.mmapped {
		return
	}
	r.maps.mu.Lock()
	r.maps.list = append(r.maps.list, m)
	r.maps.mu.Unlock()
}

// unmapNow unmaps everything at once; used when decoding fails and nothing escaped.
func (r *resources) unmapNow() {
	r.maps.mu.Lock()
	defer r.maps.mu.Unlock()
	for _, m := range r.maps.list {
		unmap(m)
	}
	r.maps.list = nil
}
