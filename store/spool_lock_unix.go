//go:build unix

package store

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockSpoolDir takes an exclusive lock on the spool directory, so that two
// services (or two sinks) never append to, replay and delete the same
// segments: their order would be lost. The lock goes with the file when it
// is closed or the process dies.
func lockSpoolDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, spoolLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: spool: directory not writable: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: spool %s is in use by another process or sink: %w", dir, err)
	}
	return f, nil
}
