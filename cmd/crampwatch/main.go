// Command crampwatch watches leg-muscle EMG overnight and catches night
// cramps as they start. One binary, several subcommands; run
// "crampwatch help" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/crampwatch/crampwatch/config"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the service: MQTT in, detection, InfluxDB/journal/MQTT/alerts out", runServe},
		{"demo", "zero-setup demo: embedded broker, simulated night at high speed, service, summary", runDemo},
		{"sim", "firmware simulator: N virtual devices publishing contract frames, with ground truth", runSim},
		{"eval", "evaluate detection on simulated nights against ground truth", runEval},
		{"replay", "run the pipeline over a recorded CSV file, print events as JSON Lines", runReplay},
		{"bench", "end-to-end throughput benchmark: Mosquitto, InfluxDB, service and N simulated devices", runBench},
		{"soak", "run the simulator against the service for a while; report frames, lag, events, memory", runSoak},
		{"export", "research export: events, night summaries, envelope windows as CSV, JSON Lines, Parquet, EDF+", runExport},
		{"report", "night report of one wearer as PNG and self-contained HTML page, for people without Grafana", runReport},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			}
			fmt.Fprintf(stderr, "crampwatch %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "crampwatch: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage marks a command-line mistake whose message was already printed.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "crampwatch: catches night cramps in EMG and motion sensor streams.")
	fmt.Fprintln(w, "\nUsage: crampwatch <command> [flags]   (crampwatch <command> -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "  help     this list")
}

func runVersion(_ context.Context, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "crampwatch", version())
	return nil
}

// version returns the module version or VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return "devel"
}

// newLogger builds the slog logger from --log-level and --log-format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// readEnvOrFile returns the environment variable env, or the trimmed
// contents of file when it is set.
func readEnvOrFile(env, file string) (string, error) {
	return config.ReadSecret(os.Getenv(env), file)
}
