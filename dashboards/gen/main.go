// Command gen writes crampwatch's Grafana dashboards as JSON files:
//
//	go run ./dashboards/gen            # writes dashboards/*.json
//	go run ./dashboards/gen -out DIR   # writes them to DIR
//
// Run it after changing a dashboard in package dashboards and commit the
// JSON with the code; a test fails when the two differ.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/crampwatch/crampwatch/dashboards"
)

func main() {
	out := flag.String("out", "dashboards", "directory to write the dashboard JSON files to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	for _, s := range dashboards.All() {
		b, err := s.Render()
		if err != nil {
			return err
		}
		path := filepath.Join(dir, s.File)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}
