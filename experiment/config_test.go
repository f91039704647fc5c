package experiment

import (
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseYAMLAndJSON(t *testing.T) {
	yml := `
name: b2n
model: models/clip.onnx
protocol: base2new
datasets:
  - {name: pets, data: data/pets, split_file: data/pets/split_zhou_OxfordPets.json}
  - name: cars
    data: /abs/cars
shots: 16
seeds: [1, 2, 3]
strategies:
  - {name: lskip, args: {start: 6}}
  - {name: cskip, args: {ratio: 0.5}}
train: {epochs: 20, batch: 4, lr: {text: 2e-5, vision: 5e-6}, warmup_epochs: 1}
`
	js := `{"name": "b2n", "model": "models/clip.onnx", "protocol": "base2new",
 "datasets": [{"name": "pets", "data": "data/pets", "split_file": "data/pets/split_zhou_OxfordPets.json"}, {"name": "cars", "data": "/abs/cars"}],
 "shots": [16], "seeds": [1, 2, 3],
 "strategies": [{"name": "lskip", "args": {"start": 6}}, {"name": "cskip", "args": {"ratio": 0.5}}],
 "train": {"epochs": 20, "batch": 4, "lr": {"text": 2e-5, "vision": 5e-6}, "warmup_epochs": 1}}`
	dir := t.TempDir()
	a, err := Parse([]byte(yml), filepath.Join(dir, "x.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(js), filepath.Join(dir, "x.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("YAML and JSON differ:\n%+v\n%+v", a, b)
	}
	if a.fingerprint() != b.fingerprint() {
		t.Error("YAML and JSON have different fingerprints")
	}
	if a.Model != filepath.Join(dir, "models", "clip.onnx") || a.Datasets[1].Data != "/abs/cars" ||
		a.Datasets[0].SplitFile != filepath.Join(dir, "data", "pets", "split_zhou_OxfordPets.json") {
		t.Errorf("paths not resolved against the file's folder: %s %s %s", a.Model, a.Datasets[1].Data, a.Datasets[0].SplitFile)
	}
	if a.Strategies[0].args()["start"] != "6" || a.Strategies[1].args()["ratio"] != "0.5" {
		t.Errorf("strategy args %v %v", a.Strategies[0].args(), a.Strategies[1].args())
	}
	ids := []string{}
	for _, j := range a.Jobs() {
		ids = append(ids, j.ID)
	}
	if want := []string{"pets-seed1", "pets-seed2", "pets-seed3", "cars-seed1", "cars-seed2", "cars-seed3"}; !slices.Equal(ids, want) {
		t.Errorf("jobs %v, want %v", ids, want)
	}
	// Defaults.
	d, err := Parse([]byte("model: m.onnx\ndatasets: [{name: a, data: a}]\n"), filepath.Join(dir, "d.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Protocol != Base2New || !slices.Equal(d.Seeds, []uint64{1, 2, 3}) || !slices.Equal([]int(d.Shots), []int{16}) ||
		len(d.Strategies) != 2 || d.Strategies[0].Name != "lskip" || d.Strategies[1].Name != "cskip" {
		t.Errorf("defaults: %+v", d)
	}
	// A changed training setting changes the fingerprint; a new seed does not.
	e := *d
	e.Train.Epochs = 3
	f := *d
	f.Seeds = []uint64{1, 2, 3, 4}
	if e.fingerprint() == d.fingerprint() || f.fingerprint() != d.fingerprint() {
		t.Error("fingerprint does not follow the settings")
	}
}

func TestJobsPerProtocol(t *testing.T) {
	for _, tt := range []struct {
		body string
		want []string
	}{
		{"protocol: fewshot\nshots: [1, 4]\nseeds: [1, 2]\ndatasets: [{name: a, data: a}]", []string{"a-1shot-seed1", "a-1shot-seed2", "a-4shot-seed1", "a-4shot-seed2"}},
		{"protocol: xd\nsource: b\nseeds: [5]\ndatasets: [{name: a, data: a}, {name: b, data: b}]", []string{"b-seed5"}},
		{"protocol: dg\nseeds: [1, 2]\ndatasets: [{name: imagenet, data: a}, {name: sketch, data: b}]", []string{"imagenet-seed1", "imagenet-seed2"}},
	} {
		c, err := Parse([]byte("model: m.onnx\n"+tt.body), "e.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, j := range c.Jobs() {
			ids = append(ids, j.ID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("%s: jobs %v, want %v", c.Protocol, ids, tt.want)
		}
	}
}

func TestConfigRefused(t *testing.T) {
	base := "model: m.onnx\ndatasets: [{name: a, data: a}]\n"
	for _, tt := range []struct {
		name, body, want string
	}{
		{"empty", "", "empty experiment file"},
		{"unknown key", base + "epochs: 3\n", "field epochs not found"},
		{"unknown protocol", base + "protocol: zeroshot\n", `protocol "zeroshot"`},
		{"no model", "datasets: [{name: a, data: a}]\n", "no model"},
		{"no datasets", "model: m.onnx\n", "no datasets"},
		{"bad name", "model: m.onnx\ndatasets: [{name: ../x, data: a}]\n", `name "../x"`},
		{"duplicate name", "model: m.onnx\ndatasets: [{name: a, data: a}, {name: a, data: b}]\n", "used twice"},
		{"no data", "model: m.onnx\ndatasets: [{name: a}]\n", "no data folder"},
		{"shots list outside fewshot", base + "shots: [1, 2]\n", "takes one value"},
		{"negative shots", base + "shots: -1\n", "shots -1"},
		{"duplicate seed", base + "seeds: [1, 1]\n", "given twice"},
		{"unknown strategy", base + "strategies: [{name: nope}]\n", `"nope" is not a built-in strategy`},
		{"bad strategy arg", base + "strategies: [{name: cskip, args: {max: x}}]\n", "not a valid int"},
		{"unknown strategy arg", base + "strategies: [{name: cskip, args: {topk: 3}}]\n", `no parameter "topk"`},
		{"template without placeholder", base + "templates: [a photo]\n", "no {}"},
		{"xd with one data set", base + "protocol: xd\n", "at least one target"},
		{"source outside xd", base + "source: a\n", "source applies to"},
		{"unknown source", "model: m.onnx\nprotocol: xd\nsource: z\ndatasets: [{name: a, data: a}, {name: b, data: b}]\n", `source "z"`},
		{"not YAML", "model: [\n", "e.yaml"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body), "e.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "e.yaml: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with the file and containing %q", msg, tt.want)
			}
		})
	}
}

func TestShards(t *testing.T) {
	c, err := Parse([]byte("model: m.onnx\nseeds: [1, 2, 3]\ndatasets: [{name: a, data: a}, {name: b, data: b}, {name: c, data: c}]\n"), "e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	all := c.Jobs()
	for _, n := range []int{1, 2, 4, 9, 12} {
		seen := map[string]int{}
		for i := range n {
			sh, err := ParseShard(Shard{Index: i, Count: n}.String())
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range sh.Select(all) {
				seen[j.ID]++
			}
			if again := sh.Select(all); !slices.Equal(again, sh.Select(all)) {
				t.Error("selection is not deterministic")
			}
		}
		for _, j := range all {
			if seen[j.ID] != 1 {
				t.Errorf("%d shards: job %s selected %d times", n, j.ID, seen[j.ID])
			}
		}
	}
	if got := (Shard{Index: 1, Count: 4}).Select(all); len(got) != 2 || got[0].ID != "a-seed2" || got[1].ID != "b-seed3" {
		t.Errorf("shard 1/4: %v", got)
	}
	for _, bad := range []string{"", "1", "2/2", "-1/2", "a/b", "0/0", "1/0"} {
		if _, err := ParseShard(bad); err == nil {
			t.Errorf("--shard %q accepted", bad)
		}
	}
}
