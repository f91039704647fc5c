package train

import "github.com/skipgraph/skipgraph/data"

// DrawFile is the file of a training output folder that records the training images drawn
// (a data.DrawRecord: the few-shot draw, the class subset, the seed), so a run can be audited
// and repeated.
const DrawFile = "train_items.json"

// source says which data the run reads.
func (t *trainer) source() data.Source {
	c := &t.cfg
	return data.Source{Dir: c.Data, SplitFile: c.SplitFile, Classes: c.Classes, ValFraction: c.ValFraction, Seed: c.Seed}
}
