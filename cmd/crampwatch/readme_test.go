package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// TestReadmeListsEveryServeFlag keeps the README's configuration reference
// in step with the flags serve really has.
func TestReadmeListsEveryServeFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultServeConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(readme), "`--"+f.Name+"`") {
			t.Errorf("README.md does not document --%s", f.Name)
		}
	})
}

func TestHelpListsCommands(t *testing.T) {
	var out strings.Builder
	if code := run(t.Context(), []string{"help"}, &out, &out); code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("help lacks %s", c.name)
		}
	}
	if code := run(t.Context(), []string{"nope"}, &out, &out); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
}
