package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const root = ".."

// composeBin finds docker-compose. Outside CI a missing tool skips the
// test; in CI (CI=true) it is an error, because the check must run there.
func composeBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("docker-compose")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("docker-compose is required in CI to validate docker-compose.yml: apt-get install -y docker-compose (scripts/test.sh does): %v", err)
	}
	t.Skipf("docker-compose not installed (apt-get install -y docker-compose): %v", err)
	return ""
}

// compose runs docker-compose in the repository root with only the given
// env file: the caller's environment and any local .env stay out of it.
func compose(t *testing.T, envFile string, args ...string) (string, error) {
	t.Helper()
	bin := composeBin(t)
	full := append([]string{"--project-directory", root, "-f", filepath.Join(root, "docker-compose.yml"), "--env-file", envFile}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func exampleEnv() string { return filepath.Join(root, "deploy", ".env.example") }

func TestComposeConfigValid(t *testing.T) {
	for _, args := range [][]string{
		{"config", "-q"},
		{"--profile", "sim", "config", "-q"},
	} {
		if out, err := compose(t, exampleEnv(), args...); err != nil {
			t.Errorf("docker-compose %s with deploy/.env.example: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestComposeRequiresSecrets: without the secrets the stack must refuse to
// start rather than come up with empty passwords.
func TestComposeRequiresSecrets(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := compose(t, empty, "config", "-q")
	if err == nil {
		t.Fatal("docker-compose config accepted a stack without any secret")
	}
	if !strings.Contains(out, "in .env") {
		t.Errorf("error does not say which setting is missing:\n%s", out)
	}
}

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Profiles    []string       `yaml:"profiles"`
		Healthcheck map[string]any `yaml:"healthcheck"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Environment map[string]string `yaml:"environment"`
	} `yaml:"services"`
}

// TestComposeStackShape checks what the stack promises: pinned images,
// health checks, start order on health, the simulator behind a profile.
func TestComposeStackShape(t *testing.T) {
	out, err := compose(t, exampleEnv(), "--profile", "sim", "config")
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	var cf composeFile
	if err := yaml.Unmarshal([]byte(out), &cf); err != nil {
		t.Fatalf("parse resolved compose file: %v", err)
	}
	want := []string{"mosquitto", "influxdb", "crampwatch", "sim", "prometheus", "grafana"}
	for _, name := range want {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	pinned := regexp.MustCompile(`^[a-z0-9./-]+:v?\d+\.\d+(\.\d+)?$`)
	for name, s := range cf.Services {
		if s.Build == nil && !pinned.MatchString(s.Image) {
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
		if name != "sim" && len(s.Healthcheck) == 0 {
			t.Errorf("%s: no health check", name)
		}
		for dep, d := range s.DependsOn {
			if d.Condition != "service_healthy" {
				t.Errorf("%s: depends on %s without condition service_healthy", name, dep)
			}
		}
	}
	if p := cf.Services["sim"].Profiles; len(p) != 1 || p[0] != "sim" {
		t.Errorf("sim: profiles %v, want [sim]", p)
	}
	for _, dep := range []string{"mosquitto", "influxdb"} {
		if _, ok := cf.Services["crampwatch"].DependsOn[dep]; !ok {
			t.Errorf("crampwatch does not wait for %s", dep)
		}
	}
	env := cf.Services["influxdb"].Environment
	for _, k := range []string{"DOCKER_INFLUXDB_INIT_MODE", "DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET", "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"} {
		if env[k] == "" {
			t.Errorf("influxdb: %s not set", k)
		}
	}
}

// TestEnvExampleCoversCompose: every variable the compose file reads is in
// the example, and the example carries placeholders, not secrets.
func TestEnvExampleCoversCompose(t *testing.T) {
	yml, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(exampleEnv())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	example := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: bad line %q", line)
			continue
		}
		example[k] = v
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(string(yml), -1) {
		if _, ok := example[m[1]]; !ok {
			t.Errorf("docker-compose.yml reads %s, which deploy/.env.example does not set", m[1])
		}
	}
	for k, v := range example {
		if (strings.Contains(k, "PASSWORD") || strings.Contains(k, "TOKEN")) && !strings.HasPrefix(v, "change-me") {
			t.Errorf(".env.example: %s must be a change-me placeholder, not a value", k)
		}
	}
}
