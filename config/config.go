// Package config loads a command's settings from, in rising precedence, the
// flag defaults, a YAML config file, environment variables and the command
// line. The flag set is the one definition of every setting: each flag
// --some-name has the environment variable CRAMPWATCH_SOME_NAME and the file
// key some-name, so the three can never drift apart.
package config

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix prefixes every environment variable name.
const EnvPrefix = "CRAMPWATCH_"

// Loader applies a config file and the environment to a flag set.
type Loader struct {
	// FileFlag is the name of the flag that holds the config file path, e.g. "config".
	FileFlag string
	// Secrets names flags whose values must never be logged or printed.
	Secrets []string
	// Getenv reads the environment; nil means os.Getenv. Tests replace it.
	Getenv func(string) string
}

// EnvName returns the environment variable that sets flag name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from the environment or, failing that, from the config file.
func (l Loader) Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	getenv := l.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	explicit := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	// The file path itself may come from the environment.
	if l.FileFlag != "" && !explicit[l.FileFlag] {
		if v := getenv(EnvName(l.FileFlag)); v != "" {
			if err := fs.Set(l.FileFlag, v); err != nil {
				return fmt.Errorf("%s: %w", EnvName(l.FileFlag), err)
			}
		}
	}
	fromFile := map[string]string{}
	if l.FileFlag != "" {
		if path := fs.Lookup(l.FileFlag).Value.String(); path != "" {
			var err error
			if fromFile, err = readFile(path); err != nil {
				return err
			}
		}
	}
	for name := range fromFile {
		if fs.Lookup(name) == nil {
			return fmt.Errorf("config file: unknown setting %q (run with -h for the list)", name)
		}
	}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || explicit[f.Name] || f.Name == l.FileFlag {
			return
		}
		src, v := EnvName(f.Name), getenv(EnvName(f.Name))
		if v == "" {
			src = "config file"
			var ok bool
			if v, ok = fromFile[f.Name]; !ok {
				return
			}
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s: setting %s: %w", src, f.Name, e)
		}
	})
	return err
}

// readFile reads a flat YAML mapping of setting names to scalar values.
func readFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("config file %s: %q must be a single value", path, k)
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// LogValue returns every setting as a log attribute group, with secrets
// replaced by "<redacted>" (or "" when unset, so an operator can tell).
func (l Loader) LogValue(fs *flag.FlagSet) slog.Value {
	secret := make(map[string]bool, len(l.Secrets))
	for _, s := range l.Secrets {
		secret[s] = true
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	attrs := make([]slog.Attr, 0, len(names))
	for _, n := range names {
		v := fs.Lookup(n).Value.String()
		if secret[n] && v != "" {
			v = "<redacted>"
		}
		attrs = append(attrs, slog.String(n, v))
	}
	return slog.GroupValue(attrs...)
}

// ReadSecret returns value, or the trimmed contents of file when value is
// empty and file is set, so secrets can come from mounted files.
func ReadSecret(value, file string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
