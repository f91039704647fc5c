package experiment

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Result is a finished job's record (jobs/ID/result.json).
type Result struct {
	// Job is the job's ID; Dataset, Shots and Seed as in Job.
	Job     string `json:"job"`
	Dataset string `json:"dataset"`
	Shots   int    `json:"shots"`
	Seed    uint64 `json:"seed"`
	// Protocol and Fingerprint tell which settings made the result.
	Protocol    string `json:"protocol"`
	Fingerprint string `json:"fingerprint"`
	// Accuracy holds the top-1 test accuracies (fractions): "base" and "new" (base2new),
	// "accuracy" (fewshot), or one per data set name (xd, dg).
	Accuracy map[string]float64 `json:"accuracy"`
	// H is the harmonic mean of base and new accuracy (base2new only).
	H float64 `json:"h,omitempty"`
	// TrainSeconds is the wall time of training (of its last part when the job was resumed).
	TrainSeconds float64 `json:"train_seconds"`
	// PeakRSS is the process's peak resident memory during the job, in bytes; PeakReset says
	// whether the peak was reset when the job started (otherwise it may include earlier jobs).
	PeakRSS   int64 `json:"peak_rss_bytes"`
	PeakReset bool  `json:"peak_reset"`
	// Resumed is set when the job's training continued an interrupted run.
	Resumed bool `json:"resumed,omitempty"`
}

// Harmonic returns the harmonic mean 2ab/(a+b) of two accuracies (0 when both are 0).
func Harmonic(a, b float64) float64 {
	if a+b == 0 {
		return 0
	}
	return 2 * a * b / (a + b)
}

// Stat is a mean and a standard deviation over seeds.
type Stat struct {
	Mean float64 `json:"mean"`
	// Std is the population standard deviation over the seeds (as Dassl's result parser
	// reports it); absent in the average row.
	Std *float64 `json:"std,omitempty"`
	// N is the number of values.
	N int `json:"n"`
}

// MeanStd returns the mean and the population standard deviation of xs.
func MeanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}

func stat(xs []float64) Stat {
	m, s := MeanStd(xs)
	return Stat{Mean: m, Std: &s, N: len(xs)}
}

// Row is one line of the table.
type Row struct {
	// Label is the data set (or, for xd/dg, the source data set; "average" in the last row).
	Label string `json:"label"`
	// Values are by Summary.Columns.
	Values []Stat `json:"values"`
}

// Summary is the experiment's table.
type Summary struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	// Columns name the values of each row: base, new, H (base2new); "K shots" (fewshot); the
	// data sets and "target average" (xd, dg).
	Columns []string `json:"columns"`
	// Rows are per data set; Average is the mean over them (nil for xd and dg).
	Rows    []Row `json:"rows"`
	Average *Row  `json:"average,omitempty"`
	// Seeds are the seeds averaged.
	Seeds []uint64 `json:"seeds"`
	// Jobs are the results, in job order.
	Jobs []Result `json:"jobs"`
}

// Summarise builds the table from every job's result. Per data set, each value is the mean over
// seeds with the population standard deviation; H is the harmonic mean of the mean base and
// mean new accuracies, its deviation that of the per-seed H values. The average row is the mean
// over data sets of each data set's mean (H again from the average base and new), as the
// papers report it.
func Summarise(c *Config, results []Result) (*Summary, error) {
	byID := map[string]Result{}
	for _, r := range results {
		byID[r.Job] = r
	}
	s := &Summary{Name: c.Name, Protocol: c.Protocol, Seeds: c.Seeds}
	var missing []string
	for _, j := range c.Jobs() {
		r, ok := byID[j.ID]
		if !ok {
			missing = append(missing, j.ID)
			continue
		}
		s.Jobs = append(s.Jobs, r)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%d of %d jobs have no result yet (%s); run them (or the missing shards) first", len(missing), len(c.Jobs()), strings.Join(missing[:min(len(missing), 4)], ", ")+more(len(missing)-4))
	}
	collect := func(ds string, shots int, key string) []float64 {
		var xs []float64
		for _, r := range s.Jobs {
			if r.Dataset == ds && r.Shots == shots {
				xs = append(xs, r.Accuracy[key])
			}
		}
		return xs
	}
	switch c.Protocol {
	case Base2New:
		s.Columns = []string{"base", "new", "H"}
		var bases, news []float64
		for _, d := range c.Datasets {
			b, n := collect(d.Name, c.Shots[0], "base"), collect(d.Name, c.Shots[0], "new")
			hs := make([]float64, len(b))
			for i := range b {
				hs[i] = Harmonic(b[i], n[i])
			}
			sb, sn, sh := stat(b), stat(n), stat(hs)
			sh.Mean = Harmonic(sb.Mean, sn.Mean)
			s.Rows = append(s.Rows, Row{Label: d.Name, Values: []Stat{sb, sn, sh}})
			bases, news = append(bases, sb.Mean), append(news, sn.Mean)
		}
		mb, _ := MeanStd(bases)
		mn, _ := MeanStd(news)
		s.Average = &Row{Label: "average", Values: []Stat{{Mean: mb, N: len(bases)}, {Mean: mn, N: len(news)}, {Mean: Harmonic(mb, mn), N: len(bases)}}}
	case FewShot:
		for _, k := range c.Shots {
			s.Columns = append(s.Columns, shotsLabel(k))
		}
		avg := make([][]float64, len(c.Shots))
		for _, d := range c.Datasets {
			row := Row{Label: d.Name}
			for i, k := range c.Shots {
				st := stat(collect(d.Name, k, "accuracy"))
				row.Values = append(row.Values, st)
				avg[i] = append(avg[i], st.Mean)
			}
			s.Rows = append(s.Rows, row)
		}
		s.Average = &Row{Label: "average"}
		for _, xs := range avg {
			m, _ := MeanStd(xs)
			s.Average.Values = append(s.Average.Values, Stat{Mean: m, N: len(xs)})
		}
	case CrossDataset, DomainGen:
		row := Row{Label: c.Source}
		var targets []float64
		for _, d := range c.Datasets {
			s.Columns = append(s.Columns, d.Name)
			st := stat(collect(c.Source, c.Shots[0], d.Name))
			row.Values = append(row.Values, st)
			if d.Name != c.Source {
				targets = append(targets, st.Mean)
			}
		}
		m, _ := MeanStd(targets)
		s.Columns = append(s.Columns, "target average")
		row.Values = append(row.Values, Stat{Mean: m, N: len(targets)})
		s.Rows = []Row{row}
	}
	return s, nil
}

func more(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" and %d more", n)
}

func shotsLabel(k int) string {
	switch k {
	case 0:
		return "all shots"
	case 1:
		return "1 shot"
	}
	return fmt.Sprintf("%d shots", k)
}

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) }

func (st Stat) text() string {
	if st.Std == nil {
		return pct(st.Mean)
	}
	return pct(st.Mean) + " ± " + pct(*st.Std)
}

func (s *Summary) rows() []Row {
	rows := slices.Clone(s.Rows)
	if s.Average != nil {
		rows = append(rows, *s.Average)
	}
	return rows
}

// WriteAccuracyMarkdown writes the accuracy table (in percent, mean ± std over seeds).
func (s *Summary) WriteAccuracyMarkdown(w io.Writer) {
	first := "data set"
	if s.Protocol == CrossDataset || s.Protocol == DomainGen {
		first = "trained on"
	}
	fmt.Fprintf(w, "| %s | %s |\n", first, strings.Join(s.Columns, " | "))
	fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---:|", len(s.Columns)))
	rows := s.rows()
	for ri, r := range rows {
		cells := make([]string, len(r.Values))
		for i, v := range r.Values {
			cells[i] = v.text()
		}
		label := r.Label
		if s.Average != nil && ri == len(rows)-1 {
			label = "**" + label + "**"
		}
		fmt.Fprintf(w, "| %s | %s |\n", label, strings.Join(cells, " | "))
	}
}

// jobColumns are the accuracy keys of a job, in table order.
func (s *Summary) jobColumns() []string {
	switch s.Protocol {
	case Base2New:
		return []string{"base", "new"}
	case FewShot:
		return []string{"accuracy"}
	}
	return s.Columns[:len(s.Columns)-1]
}

// WriteJobsMarkdown writes one line per job: its accuracies, training time and peak memory.
func (s *Summary) WriteJobsMarkdown(w io.Writer) {
	cols := s.jobColumns()
	head := append([]string{"job", "data set", "shots", "seed"}, cols...)
	if s.Protocol == Base2New {
		head = append(head, "H")
	}
	head = append(head, "train time (s)", "peak memory (MiB)")
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range s.Jobs {
		cells := []string{r.Job, r.Dataset, strconv.Itoa(r.Shots), strconv.FormatUint(r.Seed, 10)}
		for _, k := range cols {
			cells = append(cells, pct(r.Accuracy[k]))
		}
		if s.Protocol == Base2New {
			cells = append(cells, pct(r.H))
		}
		t := strconv.FormatFloat(r.TrainSeconds, 'f', 1, 64)
		if r.Resumed {
			t += " (resumed)"
		}
		cells = append(cells, t, strconv.FormatFloat(float64(r.PeakRSS)/(1<<20), 'f', 0, 64))
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
}

// Markdown renders the whole report: title, accuracy table and jobs table.
func (s *Summary) Markdown() []byte {
	var b bytes.Buffer
	title := s.Name
	if title == "" {
		title = "experiment"
	}
	fmt.Fprintf(&b, "# %s\n\nProtocol %s; top-1 test accuracy in %%, mean ± standard deviation over seeds %s.\n\n", title, s.Protocol, joinSeeds(s.Seeds))
	if s.Protocol == Base2New {
		b.WriteString("H is the harmonic mean of base and new accuracy.\n\n")
	}
	s.WriteAccuracyMarkdown(&b)
	b.WriteString("\n## Jobs\n\nPeak memory is the resident set of the process during the job.\n\n")
	s.WriteJobsMarkdown(&b)
	return b.Bytes()
}

func joinSeeds(seeds []uint64) string {
	parts := make([]string, len(seeds))
	for i, s := range seeds {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ", ")
}

// CSV renders the accuracy table: a row per data set (and the average), for each column its
// mean and standard deviation in percent.
func (s *Summary) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"dataset"}
	for _, c := range s.Columns {
		head = append(head, c+"_mean", c+"_std")
	}
	w.Write(head)
	for _, r := range s.rows() {
		rec := []string{r.Label}
		for _, v := range r.Values {
			sd := ""
			if v.Std != nil {
				sd = strconv.FormatFloat(100**v.Std, 'f', 4, 64)
			}
			rec = append(rec, strconv.FormatFloat(100*v.Mean, 'f', 4, 64), sd)
		}
		w.Write(rec)
	}
	w.Flush()
	return b.Bytes()
}

// JobsCSV renders one row per job with its accuracies (fractions), training time and peak memory.
func (s *Summary) JobsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	cols := s.jobColumns()
	w.Write(append(append([]string{"job", "dataset", "shots", "seed"}, cols...), "h", "train_seconds", "peak_rss_bytes", "resumed"))
	for _, r := range s.Jobs {
		rec := []string{r.Job, r.Dataset, strconv.Itoa(r.Shots), strconv.FormatUint(r.Seed, 10)}
		for _, k := range cols {
			rec = append(rec, strconv.FormatFloat(r.Accuracy[k], 'g', -1, 64))
		}
		h := ""
		if s.Protocol == Base2New {
			h = strconv.FormatFloat(r.H, 'g', -1, 64)
		}
		rec = append(rec, h, strconv.FormatFloat(r.TrainSeconds, 'f', 3, 64), strconv.FormatInt(r.PeakRSS, 10), strconv.FormatBool(r.Resumed))
		w.Write(rec)
	}
	w.Flush()
	return b.Bytes()
}
