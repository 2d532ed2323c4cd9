package export

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryColumn keeps docs/export.md in step with the tables:
// every column must be documented with its unit.
func TestDocsListEveryColumn(t *testing.T) {
	doc, err := os.ReadFile("../docs/export.md")
	if err != nil {
		t.Fatal(err)
	}
	all := tableOptions{device: true, notes: true}
	var names []string
	for _, c := range eventColumns(all) {
		names = append(names, c.name)
	}
	for _, c := range nightColumns(all) {
		names = append(names, c.name)
	}
	for _, c := range windowColumns(all) {
		names = append(names, c.name)
	}
	for _, n := range names {
		if !strings.Contains(string(doc), "| `"+n+"` |") {
			t.Errorf("docs/export.md has no table row for column %s", n)
		}
	}
}
