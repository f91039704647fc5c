package data

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"github.com/skipgraph/skipgraph/internal/safeio"
)

// DefaultTemplate is the prompt template used when none is given.
const DefaultTemplate = "a photo of a {}."

// Placeholder marks where a template takes the class name.
const Placeholder = "{}"

// ClassesFile is the optional file in a data set's root that lists its
// classes.
const ClassesFile = "classes.txt"

// DisplayName turns a folder name into a class name: underscores become
// spaces and runs of space collapse.
func DisplayName(folder string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(folder, "_", " ")), " ")
}

// Fill puts class into every placeholder of template.
func Fill(template, class string) string {
	return strings.ReplaceAll(template, Placeholder, class)
}

// CheckTemplate reports a template without a placeholder.
func CheckTemplate(template string) error {
	if !strings.Contains(template, Placeholder) {
		return fmt.Errorf("template %q has no %s where the class name goes; write e.g. %q", template, Placeholder, DefaultTemplate)
	}
	return nil
}

// ReadTemplates reads prompt templates, one per line. Blank lines and lines
// starting with # are skipped; every other line must contain "{}".
func ReadTemplates(path string) ([]string, error) {
	data, err := safeio.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, Placeholder) {
			return nil, fmt.Errorf("%s: line %d: template %q has no %s where the class name goes", path, n, line, Placeholder)
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no templates; write one per line, each with %s", path, Placeholder)
	}
	return out, nil
}

// ResolveTemplates picks the templates from the command-line choices: a
// file of templates, a single template, or DefaultTemplate when both are
// empty. Giving both is an error.
func ResolveTemplates(template, file string) ([]string, error) {
	switch {
	case template != "" && file != "":
		return nil, fmt.Errorf("both a template (%q) and a template file (%s) given; use one", template, file)
	case file != "":
		return ReadTemplates(file)
	case template != "":
		if err := CheckTemplate(template); err != nil {
			return nil, err
		}
		return []string{template}, nil
	}
	return []string{DefaultTemplate}, nil
}

// Prompts fills every template with every class: out[class][template].
func Prompts(templates, classes []string) [][]string {
	out := make([][]string, len(classes))
	for i, c := range classes {
		out[i] = make([]string, len(templates))
		for j, t := range templates {
			out[i][j] = Fill(t, c)
		}
	}
	return out
}

// ClassEntry is one line of a classes.txt file.
type ClassEntry struct {
	// Folder is the class's sub-folder name.
	Folder string
	// Name is the class name used in prompts.
	Name string
}

// ReadClasses reads a classes.txt: one class per line in label order.
// A line is a folder name alone (the class name is its DisplayName), or a
// folder name, a tab or a space, and the class name (as CoOp's
// "n01440764 tench"); a tab wins over a space, so folder names with spaces
// need one. Blank lines and lines starting with # are skipped.
func ReadClasses(path string) ([]ClassEntry, error) {
	data, err := safeio.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, safeio.PathCause(err))
	}
	var out []ClassEntry
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		folder, name, ok := strings.Cut(line, "\t")
		if !ok {
			folder, name, _ = strings.Cut(line, " ")
		}
		folder, name = strings.TrimSpace(folder), strings.TrimSpace(name)
		if name == "" {
			name = DisplayName(folder)
		}
		if prev, dup := seen[folder]; dup {
			return nil, fmt.Errorf("%s: line %d: class %q already listed on line %d", path, n, folder, prev)
		}
		seen[folder] = n
		out = append(out, ClassEntry{Folder: folder, Name: name})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no classes; write one class per line", path)
	}
	return out, nil
}
