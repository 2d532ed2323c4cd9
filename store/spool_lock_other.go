//go:build !unix

package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockSpoolDir only checks that the spool directory is writable: without
// flock, keeping one service per directory is up to the operator.
func lockSpoolDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, spoolLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: spool: directory not writable: %w", err)
	}
	return f, nil
}
