package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crampwatch/crampwatch/alerts"
	"github.com/crampwatch/crampwatch/config"
	"github.com/crampwatch/crampwatch/detect"
	"github.com/crampwatch/crampwatch/eventpub"
	"github.com/crampwatch/crampwatch/export"
	"github.com/crampwatch/crampwatch/httpapi"
	"github.com/crampwatch/crampwatch/ingest"
	"github.com/crampwatch/crampwatch/journal"
	"github.com/crampwatch/crampwatch/mqttclient"
	"github.com/crampwatch/crampwatch/pipeline"
	"github.com/crampwatch/crampwatch/store"
	"github.com/crampwatch/crampwatch/wire"
)

// serveConfig is everything "crampwatch serve" can be told.
type serveConfig struct {
	configFile string
	logLevel   string
	logFormat  string

	mqtt             mqttclient.Config
	mqttPasswordFile string
	prefix           string
	shareGroup       string

	influx          store.Config
	influxTokenFile string
	journalPath     string

	httpAddr      string
	httpToken     string
	httpTokenFile string
	httpTLSCert   string
	httpTLSKey    string

	partition        partitioning
	pseudonymKeyFile string

	ingest          ingest.Config
	alerts          alerts.Config
	shutdownTimeout time.Duration
	// stateDir keeps each device's detector state across restarts
	// (pipeline.SaveState on stop, LoadState on start); empty: none.
	stateDir string
}

// secretFlags are never logged.
var secretFlags = append([]string{"mqtt-password", "influx-token", "http-token"}, alerts.SecretFlags()...)

func defaultServeConfig() serveConfig {
	host, _ := os.Hostname()
	return serveConfig{
		logLevel:  "info",
		logFormat: "text",
		mqtt: mqttclient.Config{
			URL:            "tcp://127.0.0.1:1883",
			ClientID:       "crampwatch-" + host,
			KeepAlive:      30 * time.Second,
			ConnectTimeout: 10 * time.Second,
		},
		prefix:          wire.DefaultPrefix,
		influx:          store.DefaultConfig(),
		httpAddr:        ":9090",
		alerts:          alerts.DefaultConfig(),
		shutdownTimeout: 15 * time.Second,
		// Live frames wait for room rather than being dropped: the broker
		// keeps what does not fit (see docs/operations.md, backpressure).
		ingest: ingest.Config{QueueWait: 5 * time.Second, DeviceRate: ingest.DefaultDeviceRate},
	}
}

// register defines every serve flag on fs, with c's values as defaults.
func (c *serveConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configFile, "config", c.configFile, "YAML file of settings (keys are flag names); env CRAMPWATCH_CONFIG")
	fs.StringVar(&c.logLevel, "log-level", c.logLevel, "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", c.logFormat, "text or json")

	fs.StringVar(&c.mqtt.URL, "mqtt-url", c.mqtt.URL, "MQTT broker URL: tcp://, ssl:// or ws://")
	fs.StringVar(&c.mqtt.ClientID, "mqtt-client-id", c.mqtt.ClientID, "MQTT client id; keep it stable so the persistent session survives restarts")
	fs.StringVar(&c.mqtt.Username, "mqtt-username", c.mqtt.Username, "MQTT user name")
	fs.StringVar(&c.mqtt.Password, "mqtt-password", c.mqtt.Password, "MQTT password (secret; prefer --mqtt-password-file)")
	fs.StringVar(&c.mqttPasswordFile, "mqtt-password-file", c.mqttPasswordFile, "file holding the MQTT password")
	fs.StringVar(&c.mqtt.TLS.CAFile, "mqtt-ca-file", c.mqtt.TLS.CAFile, "CA certificate (PEM) that signed the broker's certificate")
	fs.StringVar(&c.mqtt.TLS.CertFile, "mqtt-cert-file", c.mqtt.TLS.CertFile, "client certificate (PEM) for mutual TLS")
	fs.StringVar(&c.mqtt.TLS.KeyFile, "mqtt-key-file", c.mqtt.TLS.KeyFile, "client key (PEM) for mutual TLS")
	fs.StringVar(&c.mqtt.StoreDir, "mqtt-store-dir", c.mqtt.StoreDir, "directory for in-flight QoS 1 messages; empty: memory")
	fs.DurationVar(&c.mqtt.WriteDelay, "mqtt-write-delay", c.mqtt.WriteDelay, "let acknowledgements written within this long share one write (e.g. 200us at thousands of devices); 0: send each at once")
	fs.StringVar(&c.prefix, "topic-prefix", c.prefix, "MQTT topic prefix of wire contract v1")
	fs.StringVar(&c.shareGroup, "mqtt-share-group", c.shareGroup, "subscribe through $share/<group>/... so several instances split the devices; empty: off")

	fs.StringVar(&c.influx.URL, "influx-url", c.influx.URL, "InfluxDB URL (v2 API: InfluxDB 2.x, or 1.8 with flux-enabled); empty: no database, journal only")
	fs.StringVar(&c.influx.Token, "influx-token", c.influx.Token, `InfluxDB token (secret; 1.8: "user:password"); prefer --influx-token-file`)
	fs.StringVar(&c.influxTokenFile, "influx-token-file", c.influxTokenFile, "file holding the InfluxDB token")
	fs.StringVar(&c.influx.Org, "influx-org", c.influx.Org, "InfluxDB organisation (ignored by 1.8)")
	fs.StringVar(&c.influx.Bucket, "influx-bucket", c.influx.Bucket, `InfluxDB bucket (1.8: "database/retention-policy")`)
	fs.BoolVar(&c.influx.Envelope, "influx-envelope", c.influx.Envelope, "write the 10 Hz EMG envelope")
	fs.BoolVar(&c.influx.Motion, "influx-motion", c.influx.Motion, "write the 10 Hz IMU motion features")
	fs.IntVar(&c.influx.BatchSize, "influx-batch-size", c.influx.BatchSize, "most points per write request")
	fs.DurationVar(&c.influx.FlushInterval, "influx-flush-interval", c.influx.FlushInterval, "longest wait before queued points are written")
	fs.StringVar(&c.influx.SpoolDir, "influx-spool-dir", c.influx.SpoolDir, "directory of the on-disk spool that keeps writes through InfluxDB outages; empty: no spool (memory only)")
	fs.Int64Var(&c.influx.SpoolMaxBytes, "influx-spool-max-bytes", c.influx.SpoolMaxBytes, "size bound of the spool; when full, envelope/motion/health go before events")
	fs.StringVar(&c.journalPath, "journal", c.journalPath, "local event journal (JSON Lines); empty: crampwatch-journal.jsonl when --influx-url is empty, else none")

	fs.StringVar(&c.httpAddr, "http-addr", c.httpAddr, "address of /metrics, /healthz, /readyz")
	fs.StringVar(&c.httpToken, "http-token", c.httpToken, "bearer token for the data endpoints (secret); empty: they refuse everyone")
	fs.StringVar(&c.httpTokenFile, "http-token-file", c.httpTokenFile, "file holding the HTTP bearer token")
	fs.StringVar(&c.httpTLSCert, "http-tls-cert", c.httpTLSCert, "serve HTTPS with this certificate (PEM)")
	fs.StringVar(&c.httpTLSKey, "http-tls-key", c.httpTLSKey, "key of --http-tls-cert (PEM)")

	fs.IntVar(&c.ingest.Shards, "shards", c.ingest.Shards, "detection worker goroutines; 0: one per CPU")
	fs.IntVar(&c.ingest.QueueLen, "queue-len", c.ingest.QueueLen, "frames queued per worker before new ones are dropped; 0: default")
	fs.IntVar(&c.ingest.MaxDevices, "max-devices", c.ingest.MaxDevices, "most devices tracked at once; 0: default")
	fs.DurationVar(&c.ingest.QueueWait, "queue-wait", c.ingest.QueueWait, "how long a frame waits for room in a full worker queue before it is dropped (backpressure to the broker); 0: drop at once")
	fs.Float64Var(&c.ingest.DeviceRate, "device-rate", c.ingest.DeviceRate, "most live messages per second per device (bursts of 10 s); more are dropped as rate_limited; negative: no limit")
	fs.StringVar(&c.stateDir, "state-dir", c.stateDir, "directory keeping each device's detector and alert state (baselines, open cramps, unacknowledged alerts, cap and cooldown) across restarts; empty: none")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", c.shutdownTimeout, "longest time to flush sinks on SIGTERM")
	fs.StringVar(&c.pseudonymKeyFile, "pseudonym-key-file", c.pseudonymKeyFile, "key of the subject pseudonyms (HMAC-SHA256) for the export endpoints; env CRAMPWATCH_PSEUDONYM_KEY; neither: no export endpoints")
	c.partition.register(fs)
	c.alerts.RegisterFlags(fs)
}

// load resolves secrets from files and checks the settings.
func (c *serveConfig) load() error {
	var err error
	if c.mqtt.Password, err = config.ReadSecret(c.mqtt.Password, c.mqttPasswordFile); err != nil {
		return fmt.Errorf("--mqtt-password-file: %w", err)
	}
	if c.influx.Token, err = config.ReadSecret(c.influx.Token, c.influxTokenFile); err != nil {
		return fmt.Errorf("--influx-token-file: %w", err)
	}
	if c.httpToken, err = config.ReadSecret(c.httpToken, c.httpTokenFile); err != nil {
		return fmt.Errorf("--http-token-file: %w", err)
	}
	if c.journalPath == "" && c.influx.URL == "" {
		c.journalPath = "crampwatch-journal.jsonl"
	}
	if c.influx.URL != "" && c.influx.Bucket == "" {
		return errors.New("--influx-bucket is required with --influx-url")
	}
	if !validPrefix(c.prefix) {
		return fmt.Errorf("--topic-prefix %q: not a valid topic prefix", c.prefix)
	}
	if err := c.partition.load(c.shareGroup); err != nil {
		return err
	}
	c.ingest.Prefix = c.prefix
	c.alerts.Prefix = c.prefix
	return c.alerts.Validate()
}

// parseServeFlags parses args for a command built on the service (serve, demo).
func parseServeFlags(name string, args []string, c *serveConfig, stderr io.Writer, extra func(*flag.FlagSet)) (config.Loader, *flag.FlagSet, error) {
	fs := flag.NewFlagSet("crampwatch "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs)
	if extra != nil {
		extra(fs)
	}
	l := config.Loader{FileFlag: "config", Secrets: secretFlags}
	if err := l.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return l, fs, err
		}
		fmt.Fprintln(stderr, err)
		return l, fs, errUsage
	}
	if err := c.load(); err != nil {
		return l, fs, err
	}
	return l, fs, nil
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := defaultServeConfig()
	loader, fs, err := parseServeFlags("serve", args, &cfg, stderr, nil)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return err
	}
	log.Info("crampwatch serve starting", "version", version(), "settings", loader.LogValue(fs))
	reg := newRegistry()
	svc, err := startService(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.shutdownTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	return svc.stop(stopCtx, false)
}

// newRegistry returns a registry with the Go runtime and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// service is the running data path: MQTT in, router, pipeline, sinks, HTTP.
type service struct {
	log      *slog.Logger
	sub, pub *mqttclient.Client
	router   *ingest.Router
	pipe     *pipeline.Pipeline
	api      *httpapi.Server
	engine   *alerts.Engine // its state is saved with the detectors'
	stateDir string
	httpDone chan error
	stopHTTP context.CancelFunc
}

// startService connects everything and starts consuming. extra sinks (the
// demo's console, tests' collectors) receive what the detectors produce too.
func startService(ctx context.Context, cfg serveConfig, log *slog.Logger, reg *prometheus.Registry, extra ...pipeline.Sink) (svc *service, err error) {
	svc = &service{log: log}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	api := httpapi.New(reg, cfg.httpToken, log)
	svc.api = api
	mqttMetrics := mqttclient.NewMetrics(reg)

	// Outbound messages (events, alerts) use their own clean-session client:
	// the inbound client's persistent session must only carry sensor data,
	// and on shutdown inbound stops before outbound has sent its last words.
	pubCfg := cfg.mqtt
	pubCfg.ClientID += "-pub"
	pubCfg.CleanSession = true
	pubCfg.StoreDir = ""
	pubCfg.Metrics = mqttMetrics
	if svc.pub, err = mqttclient.Connect(ctx, pubCfg, log.With("mqtt", "pub")); err != nil {
		return nil, fmt.Errorf("mqtt (publisher): %w", err)
	}
	closers = append(closers, func() { svc.pub.Close(time.Second) })

	var sinks []pipeline.Sink
	var influx *store.Influx
	if cfg.influx.URL != "" {
		ic := cfg.influx
		ic.Logger = log.With("sink", "influxdb")
		if influx, err = store.New(ic, reg); err != nil {
			return nil, fmt.Errorf("influxdb: %w", err)
		}
		closers = append(closers, func() { influx.Close(context.Background()) })
		api.AddCheck("influxdb", influx.Ready)
		sinks = append(sinks, influx)
	}
	if cfg.journalPath != "" {
		j, err := journal.Open(journal.Config{Path: cfg.journalPath, Logger: log.With("sink", "journal")}, reg)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		closers = append(closers, func() { j.Close(context.Background()) })
		sinks = append(sinks, j)
	}
	ep, err := eventpub.New(svc.pub, eventpub.Config{Prefix: cfg.prefix, Logger: log.With("sink", "eventpub")}, reg)
	if err != nil {
		return nil, fmt.Errorf("event publisher: %w", err)
	}
	closers = append(closers, func() { ep.Close(context.Background()) })
	sinks = append(sinks, ep)

	deps := alerts.Deps{Publisher: svc.pub, Metrics: alerts.NewMetrics(reg), Logger: log.With("component", "alerts")}
	if influx != nil {
		deps.Recorder = store.NewAlertRecorder(influx)
	}
	engine, err := alerts.NewEngine(cfg.alerts, deps)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	closers = append(closers, func() { engine.Close(context.Background()) })
	svc.engine = engine
	if cfg.stateDir != "" {
		// Before any frame or ack: a wearer's ack for an alert of the
		// previous run must find it, and the cap must count its messages.
		dir := alertStateDir(cfg.stateDir)
		n, err := engine.LoadState(dir)
		if err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
		log.Info("alert state loaded", "dir", dir, "devices", n)
	}
	sinks = append(sinks, engine)
	sinks = append(sinks, extra...)
	if err := mountExport(api, cfg, influx, log); err != nil {
		return nil, err
	}

	svc.pipe = pipeline.New(detect.DefaultConfig(), pipeline.NewMetrics(reg), log, sinks...)
	if cfg.stateDir != "" {
		n, err := svc.pipe.LoadState(cfg.stateDir)
		if err != nil {
			return nil, err
		}
		svc.stateDir = cfg.stateDir
		log.Info("detector state loaded", "dir", cfg.stateDir, "devices", n)
	}
	svc.router = ingest.NewRouter(cfg.ingest, svc.pipe, ingest.NewMetrics(reg), log.With("component", "ingest"))
	closers = append(closers, svc.router.Close)

	route := func(topic string, payload []byte) { svc.router.Handle(topic, payload) }
	wearer := func(handle func(string, []byte) error) func(string, []byte) {
		return func(topic string, payload []byte) {
			device, _, err := wire.ParseTopic(cfg.prefix, topic)
			if err == nil {
				err = handle(device, payload)
			}
			if err != nil {
				log.Warn("wearer message rejected", "topic", topic, "err", err)
			}
		}
	}
	// Handlers are registered before connecting: a persistent session
	// delivers what was queued the moment the connection is up. With
	// --partitions the filters name this instance's devices only.
	subs := cfg.partition.subscriptions(cfg.prefix, cfg.shareGroup,
		streamHandler{wire.StreamEMG, route},
		streamHandler{wire.StreamIMU, route},
		streamHandler{wire.StreamStatus, route},
		streamHandler{wire.StreamAck, wearer(engine.HandleAck)},
		streamHandler{wire.StreamDiary, wearer(engine.HandleDiary)},
	)
	subCfg := cfg.mqtt
	subCfg.Metrics = mqttMetrics
	if svc.sub, err = mqttclient.Connect(ctx, subCfg, log.With("mqtt", "sub"), subs...); err != nil {
		return nil, fmt.Errorf("mqtt (subscriber): %w", err)
	}
	closers = append(closers, func() { svc.sub.Close(time.Second) })
	api.AddCheck("mqtt", func(context.Context) error {
		if !svc.sub.Connected() || !svc.pub.Connected() {
			return errors.New("not connected to the broker")
		}
		return nil
	})

	httpCtx, stopHTTP := context.WithCancel(context.Background())
	svc.stopHTTP = stopHTTP
	svc.httpDone = make(chan error, 1)
	go func() { svc.httpDone <- api.Serve(httpCtx, cfg.httpAddr, cfg.httpTLSCert, cfg.httpTLSKey) }()
	log.Info("service running", "mqtt", cfg.mqtt.URL, "influxdb", cfg.influx.URL != "", "journal", cfg.journalPath, "http", cfg.httpAddr)
	return svc, nil
}

// stop shuts the service down in data-path order: stop taking frames, drain
// the router, optionally end open events (end of a recording, not a
// restart), save the detectors' state (--state-dir), flush every sink, then
// disconnect the publisher and HTTP.
func (s *service) stop(ctx context.Context, endStreams bool) error {
	s.sub.Close(250 * time.Millisecond)
	s.router.Close()
	if endStreams {
		s.pipe.EndStreams()
	}
	var err error
	if s.stateDir != "" {
		// After the router drained, so the state covers every frame the
		// broker has been told we have.
		n, serr := s.pipe.SaveState(s.stateDir)
		if serr != nil {
			err = serr
		}
		s.log.Info("detector state saved", "dir", s.stateDir, "devices", n)
		// The subscriber is closed and the router drained: no ack or event
		// can change the alert state after this.
		dir := alertStateDir(s.stateDir)
		n, serr = s.engine.SaveState(dir)
		err = errors.Join(err, serr)
		s.log.Info("alert state saved", "dir", dir, "devices", n)
	}
	err = errors.Join(err, s.pipe.Close(ctx))
	s.pub.Close(250 * time.Millisecond)
	s.stopHTTP()
	if herr := <-s.httpDone; herr != nil {
		err = errors.Join(err, fmt.Errorf("http: %w", herr))
	}
	if err != nil {
		s.log.Error("shutdown incomplete", "err", err)
		return err
	}
	s.log.Info("shutdown complete: sinks flushed")
	return nil
}

// alertStateDir is where the alert engine keeps its state under --state-dir:
// a subdirectory, which the pipeline's LoadState (files only) passes over.
func alertStateDir(stateDir string) string { return filepath.Join(stateDir, "alerts") }

// validPrefix reports whether p can prefix the contract's topics: non-empty,
// no wildcards, no empty levels.
func validPrefix(p string) bool {
	if p == "" || strings.ContainsAny(p, "+#\x00") {
		return false
	}
	for _, level := range strings.Split(p, "/") {
		if level == "" {
			return false
		}
	}
	return true
}

// mountExport serves the research export at /api/v1/export/{table} behind
// the bearer token, reading from InfluxDB or else the journal. Without a
// pseudonym key there is no export endpoint: subjects are never exported
// under their device ids by accident.
func mountExport(api *httpapi.Server, cfg serveConfig, influx *store.Influx, log *slog.Logger) error {
	key, err := export.LoadKey(cfg.pseudonymKeyFile, nil)
	if err != nil || len(key) == 0 {
		if cfg.pseudonymKeyFile != "" || os.Getenv("CRAMPWATCH_PSEUDONYM_KEY") != "" {
			return fmt.Errorf("export: %w", err)
		}
		log.Info("export endpoints off: no pseudonym key (--pseudonym-key-file or CRAMPWATCH_PSEUDONYM_KEY)")
		return nil
	}
	pseud, err := export.NewPseudonymizer(key)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	var src export.Source
	switch {
	case influx != nil:
		src = export.NewInfluxSource(influx)
	case cfg.journalPath != "":
		src = export.NewJournalSource(cfg.journalPath)
	default:
		return errors.New("export: neither InfluxDB nor a journal to export from")
	}
	loc, err := time.LoadLocation(cfg.alerts.TimeZone)
	if err != nil {
		return fmt.Errorf("export: --alert-time-zone: %w", err)
	}
	h, err := export.NewHandler(export.HandlerConfig{
		Source: src, Pseudonyms: pseud,
		Nights:  export.Nights{StartHour: cfg.alerts.NightStartHour, Location: loc},
		Version: version(), Logger: log.With("component", "export"),
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	api.HandleAuth("GET /api/v1/export/{table}", h)
	log.Info("export endpoints on", "path", "/api/v1/export/{table}")
	return nil
}
