package onnxio

import (
	"github.com/skipgraph/skipgraph/graph"
	"github.com/skipgraph/skipgraph/graph/onnxio/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Info is the descriptive part of a model file, beside its graph.
type Info struct {
	// ProducerName and ProducerVersion name the tool that wrote the model (e.g. pytorch 1.13.1).
	ProducerName, ProducerVersion string
	// Domain is the model's namespace (reverse-DNS), often empty.
	Domain string
	// ModelVersion is the model's own version number.
	ModelVersion int64
	// Doc is the model's doc string.
	Doc string
	// Metadata are the metadata_props key/value pairs, in file order.
	Metadata []Metadata
	// Functions name the model-local functions, as domain:name.
	Functions []string
}

// Metadata is one metadata_props entry.
type Metadata struct {
	Key, Value string
}

// modelRecord returns the model's ModelProto record, or nil.
func modelRecord(m *graph.Model) *onnxpb.ModelProto {
	if ms, ok := m.Src.(*modelSrc); ok {
		return ms.proto
	}
	return nil
}

// ModelInfo returns the producer, version, doc string, metadata and function names of a model
// read by this package (or set with SetProducer, SetDoc and SetMetadata); the zero Info for a
// model built from scratch.
func ModelInfo(m *graph.Model) Info {
	mp := modelRecord(m)
	if mp == nil {
		return Info{}
	}
	info := Info{
		ProducerName: mp.GetProducerName(), ProducerVersion: mp.GetProducerVersion(), Domain: mp.GetDomain(),
		ModelVersion: mp.GetModelVersion(), Doc: mp.GetDocString(),
	}
	for _, e := range mp.MetadataProps {
		info.Metadata = append(info.Metadata, Metadata{Key: e.GetKey(), Value: e.GetValue()})
	}
	for _, f := range mp.Functions {
		info.Functions = append(info.Functions, f.GetDomain()+":"+f.GetName())
	}
	return info
}

// editRecord replaces the model's record by an edited copy (records may be shared with clones
// of the model, so they are never changed in place).
func editRecord(m *graph.Model, edit func(mp *onnxpb.ModelProto)) {
	ms, _ := m.Src.(*modelSrc)
	next := &modelSrc{proto: &onnxpb.ModelProto{}}
	if ms != nil {
		next.res = ms.res
		if ms.proto != nil {
			next.proto = proto.Clone(ms.proto).(*onnxpb.ModelProto)
		}
	}
	edit(next.proto)
	m.Src = next
}

// SetProducer sets the producer name and version written with the model.
func SetProducer(m *graph.Model, name, version string) {
	editRecord(m, func(mp *onnxpb.ModelProto) {
		mp.ProducerName, mp.ProducerVersion = strNew(name), strNew(version)
	})
}

// SetDoc sets the model's doc string.
func SetDoc(m *graph.Model, doc string) {
	editRecord(m, func(mp *onnxpb.ModelProto) { mp.DocString = strNew(doc) })
}

// SetMetadata sets a metadata_props entry, replacing the first entry with the same key (and
// dropping further ones) or appending a new one.
func SetMetadata(m *graph.Model, key, value string) {
	editRecord(m, func(mp *onnxpb.ModelProto) {
		var out []*onnxpb.StringStringEntryProto
		done := false
		for _, e := range mp.MetadataProps {
			if e.GetKey() != key {
				out = append(out, e)
			} else if !done {
				e.Value = proto.String(value)
				out = append(out, e)
				done = true
			}
		}
		if !done {
			out = append(out, &onnxpb.StringStringEntryProto{Key: proto.String(key), Value: proto.String(value)})
		}
		mp.MetadataProps = out
	})
}
