package deploy

import (
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// podOf returns the standalone render's pod spec and its chronicler
// container, for the given values file ("" = the minimal values).
func podOf(t *testing.T, file string) (objects, *corev1.PodSpec, *corev1.Container) {
	t.Helper()
	if file == "" {
		file = minimalValues
	}
	vals := readValues(t, file)
	o := decodeStrict(t, render(t, loadChart(t), vals))
	if len(o.deployments) != 1 {
		t.Fatalf("%d Deployments; want 1", len(o.deployments))
	}
	spec := &o.deployments[0].Spec.Template.Spec
	return o, spec, chroniclerContainer(t, spec)
}

func chroniclerContainer(t *testing.T, spec *corev1.PodSpec) *corev1.Container {
	t.Helper()
	for i := range spec.Containers {
		if spec.Containers[i].Name == "chronicler" {
			return &spec.Containers[i]
		}
	}
	t.Fatalf("no container named chronicler in the pod (%d containers)", len(spec.Containers))
	return nil
}

// assertHardened checks the container (and the pod, when podLevel) runs as
// the distroless nonroot user with a read-only root filesystem, no privilege
// escalation, every capability dropped and the RuntimeDefault seccomp profile.
func assertHardened(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, podLevel bool) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("the container has no securityContext")
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("container runAsNonRoot is not true")
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Errorf("container runAsUser %v; want 65532 (distroless nonroot)", sc.RunAsUser)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("container is privileged")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container capabilities %+v; want drop [ALL], add none", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container seccompProfile %+v; want RuntimeDefault", sc.SeccompProfile)
	}
	if !podLevel {
		return
	}
	ps := spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser != 65532 {
		t.Errorf("pod securityContext %+v; want runAsNonRoot, runAsUser 65532", ps)
	}
	if ps != nil && (ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
		t.Errorf("pod seccompProfile %+v; want RuntimeDefault", ps.SeccompProfile)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token; Chronicler does not use the Kubernetes API")
	}
}

// assertProbesAndPorts checks the probes hit /healthz and /readyz on the
// port the configuration serves HTTP on, and that resources are set.
func assertProbesAndPorts(t *testing.T, c *corev1.Container, cfg map[string]any) {
	t.Helper()
	addr, _ := dig(cfg, "http", "addr").(string)
	var httpPort int32
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	if httpPort == 0 || !strings.HasSuffix(addr, ":"+itoa(int(httpPort))) {
		t.Errorf("container port http %d, config http.addr %q; want the same port", httpPort, addr)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s httpGet probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %s on port %s; want %s on port http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v; want memory requests and limits", c.Resources)
	}
}

// TestChartPodHardened: the standalone pod for the default values and each
// ci values file runs as non-root with a read-only root filesystem, all
// capabilities dropped and seccomp RuntimeDefault; probes on /healthz and
// /readyz on the configured HTTP port; a termination grace period above the
// configured shutdown grace; the config checksum on the pod.
func TestChartPodHardened(t *testing.T) {
	for name, file := range map[string]string{"minimal": minimalValues, "standalone": ciValues(t)["standalone"], "env-secrets": ciValues(t)["env-secrets"]} {
		t.Run(name, func(t *testing.T) {
			o, spec, c := podOf(t, file)
			assertHardened(t, spec, c, true)
			cfg := renderedConfig(t, o)
			assertProbesAndPorts(t, c, cfg)
			grace, err := time.ParseDuration(dig(cfg, "shutdown", "grace").(string))
			if err != nil {
				t.Fatalf("shutdown.grace: %v", err)
			}
			if spec.TerminationGracePeriodSeconds == nil || time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second <= grace {
				t.Errorf("terminationGracePeriodSeconds %v; want above shutdown.grace %s", spec.TerminationGracePeriodSeconds, grace)
			}
			if ann := o.deployments[0].Spec.Template.Annotations["checksum/chronicler-config"]; len(ann) != 64 {
				t.Errorf("pod annotation checksum/chronicler-config %q; want a sha256", ann)
			}
			if want := []string{"run", "--config", configPath}; !slices.Equal(c.Args[:3], want) {
				t.Errorf("args %v; want %v...", c.Args, want)
			}
		})
	}
}

// TestChartHA: standalone runs 2 replicas by default with advisory-lock HA
// on, a rolling update that keeps a standby (maxUnavailable 0) and a PDB
// with maxUnavailable 1 selecting exactly the pods.
func TestChartHA(t *testing.T) {
	o, _, _ := podOf(t, "")
	d := o.deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v; want 2", d.Spec.Replicas)
	}
	if on, _ := dig(renderedConfig(t, o), "ha", "enabled").(bool); !on {
		t.Error("ha.enabled is not true in the rendered configuration")
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v; want maxUnavailable 0", ru)
	}
	if len(o.pdbs) != 1 {
		t.Fatalf("%d PDBs; want 1", len(o.pdbs))
	}
	p := o.pdbs[0].Spec
	if p.MaxUnavailable == nil || p.MaxUnavailable.IntValue() != 1 || p.MinAvailable != nil {
		t.Errorf("PDB maxUnavailable %v minAvailable %v; want maxUnavailable 1", p.MaxUnavailable, p.MinAvailable)
	}
	pods := d.Spec.Template.Labels
	for k, v := range p.Selector.MatchLabels {
		if pods[k] != v {
			t.Errorf("PDB selects %s=%s; the pods have %q", k, v, pods[k])
		}
	}
	for k, v := range o.services[0].Spec.Selector {
		if pods[k] != v {
			t.Errorf("Service selects %s=%s; the pods have %q", k, v, pods[k])
		}
	}
}

// source is where a file inside the container comes from.
type source struct{ kind, name, key string }

// assertMounts checks that each file in want is mounted read-only into
// container c of spec from the ConfigMap or Secret key it names.
func assertMounts(t *testing.T, spec *corev1.PodSpec, c *corev1.Container, want map[string]source) {
	t.Helper()
	for file, w := range want {
		got, ro, ok := resolve(spec, c, file)
		if !ok || got != w || !ro {
			t.Errorf("%s comes from %+v (mounted %v, read-only %v); want %+v, read-only", file, got, ok, ro, w)
		}
	}
}

// resolve follows a path inside the container through its volumeMounts and
// the pod's volumes to the ConfigMap or Secret key it shows; ok is false if
// nothing is mounted there.
func resolve(spec *corev1.PodSpec, c *corev1.Container, file string) (src source, readOnly, ok bool) {
	var best *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if file == m.MountPath || strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			if best == nil || len(m.MountPath) > len(best.MountPath) {
				best = &c.VolumeMounts[i]
			}
		}
	}
	if best == nil {
		return source{}, false, false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(file, best.MountPath), "/")
	if best.SubPath != "" {
		if rel != "" {
			return source{}, false, false
		}
		rel = best.SubPath
	}
	for _, v := range spec.Volumes {
		if v.Name != best.Name {
			continue
		}
		var items []corev1.KeyToPath
		switch {
		case v.ConfigMap != nil:
			src, items = source{"ConfigMap", v.ConfigMap.Name, rel}, v.ConfigMap.Items
		case v.Secret != nil:
			src, items = source{"Secret", v.Secret.SecretName, rel}, v.Secret.Items
		case v.EmptyDir != nil:
			return source{"emptyDir", v.Name, rel}, best.ReadOnly, true
		default:
			return source{}, false, false
		}
		if len(items) > 0 {
			src.key = ""
			for _, it := range items {
				if path.Clean(it.Path) == rel {
					src.key = it.Key
				}
			}
			if src.key == "" {
				return source{}, false, false
			}
		}
		return src, best.ReadOnly, true
	}
	return source{}, false, false
}

// TestChartMountsFiles renders ci/standalone-values.yaml (every credential
// from an existing Secret, rule files from values) and follows every path
// the chart README lists, and every *_file key of the rendered configuration,
// through the pod's mounts to the ConfigMap or Secret key behind it.
func TestChartMountsFiles(t *testing.T) {
	o, spec, c := podOf(t, ciValues(t)["standalone"])
	cfg := renderedConfig(t, o)
	want := map[string]source{
		configPath:                          {"ConfigMap", "shop-chronicler-config", "chronicler.yaml"},
		rulesDir + "/capture.yaml":          {"ConfigMap", "shop-chronicler-rules", "capture.yaml"},
		rulesDir + "/promote.yaml":          {"ConfigMap", "shop-chronicler-rules", "promote.yaml"},
		secretsDir + "/postgres/password":   {"Secret", "shop-db-chronicler", "password"},
		secretsDir + "/store/password":      {"Secret", "kurrentdb-admin", "admin-password"},
		secretsDir + "/kafka-sasl/password": {"Secret", "kafka-user-chronicler", "password"},
		secretsDir + "/kafka-tls/ca.crt":    {"Secret", "kafka-cluster-ca", "ca.crt"},
		secretsDir + "/kafka-tls/tls.crt":   {"Secret", "kafka-cluster-ca", "user.crt"},
		secretsDir + "/kafka-tls/tls.key":   {"Secret", "kafka-cluster-ca", "user.key"},
	}
	assertMounts(t, spec, c, want)
	// The mounted ConfigMaps have the keys the mounts promise.
	if _, ok := o.configMap(t, "shop-chronicler-config").Data["chronicler.yaml"]; !ok {
		t.Error("the config ConfigMap has no chronicler.yaml")
	}
	rules := o.configMap(t, "shop-chronicler-rules").Data
	vals := readValues(t, ciValues(t)["standalone"])
	for name, content := range dig(vals, "rules", "files").(map[string]any) {
		if rules[name] != content {
			t.Errorf("rules ConfigMap %s = %q; want the values' content %q", name, rules[name], content)
		}
	}
	// The rules directory is a whole-volume mount: Kubernetes updates it in place.
	for _, m := range c.VolumeMounts {
		if m.MountPath == rulesDir && m.SubPath != "" {
			t.Errorf("rules mounted with subPath %q: ConfigMap updates would never reach the pod", m.SubPath)
		}
	}
	// Every *_file key of the configuration points at a mounted Secret key,
	// and the configuration points at the rules directory.
	files := fileKeys(cfg, "")
	if len(files) != 6 {
		t.Errorf("*_file keys %v; want 6 (postgres, store, sasl password, tls ca, cert, key)", files)
	}
	for key, p := range files {
		if src, _, ok := resolve(spec, c, p); !ok || src.kind != "Secret" {
			t.Errorf("%s: %s is not a mounted Secret key (%+v)", key, p, src)
		}
	}
	if on, _ := dig(cfg, "kafka", "tls", "enabled").(bool); !on {
		t.Error("kafka.tls.enabled is not true although secrets.kafkaTls mounts TLS material")
	}
	if paths, _ := dig(cfg, "rules", "paths").([]any); len(paths) != 1 || paths[0] != rulesDir {
		t.Errorf("rules.paths %v; want [%s]", paths, rulesDir)
	}
	// /tmp is a writable emptyDir (the root filesystem is read-only).
	if src, ro, ok := resolve(spec, c, "/tmp/x"); !ok || src.kind != "emptyDir" || ro {
		t.Errorf("/tmp is %+v (mounted %v, read-only %v); want a writable emptyDir", src, ok, ro)
	}
	// Nothing sensitive is passed as a plain env value.
	for _, e := range c.Env {
		if e.Value != "" && (strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "TOKEN")) {
			t.Errorf("env %s has a clear value", e.Name)
		}
	}
}

// TestChartSecretsAsEnv renders ci/env-secrets-values.yaml: passwords and
// tokens come as CHRONICLER_* variables from secretKeyRef (no clear value, no
// *_file key for them), the Kafka TLS CA is still a mounted file, and the
// rules come from the existing ConfigMap named in values.
func TestChartSecretsAsEnv(t *testing.T) {
	o, spec, c := podOf(t, ciValues(t)["env-secrets"])
	want := map[string]source{
		"CHRONICLER_POSTGRES_PASSWORD": {"Secret", "shop-db-chronicler", "password"},
		"CHRONICLER_STORE_PASSWORD":    {"Secret", "kurrentdb-admin", "password"},
		"CHRONICLER_KAFKA_SASL_TOKEN":  {"Secret", "kafka-oauth", "token"},
	}
	got := map[string]source{}
	for _, e := range c.Env {
		if e.Value != "" {
			t.Errorf("env %s has a clear value", e.Name)
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			got[e.Name] = source{"Secret", e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key}
		}
	}
	if len(got) != len(want) {
		t.Errorf("secret env %v; want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s from %+v; want %+v", k, got[k], w)
		}
	}
	cfg := renderedConfig(t, o)
	files := fileKeys(cfg, "")
	if len(files) != 1 || files["kafka.tls.ca_file"] == "" {
		t.Errorf("*_file keys %v; want only kafka.tls.ca_file", files)
	}
	if src, _, ok := resolve(spec, c, files["kafka.tls.ca_file"]); !ok || src != (source{"Secret", "kafka-cluster-ca", "ca.crt"}) {
		t.Errorf("kafka.tls.ca_file %s comes from %+v", files["kafka.tls.ca_file"], src)
	}
	if src, _, ok := resolve(spec, c, rulesDir+"/any.yaml"); !ok || src.kind != "ConfigMap" || src.name != "shop-chronicler-rules" {
		t.Errorf("rules come from %+v; want the existing ConfigMap shop-chronicler-rules", src)
	}
	if want := []string{"run", "--config", configPath, "--only", "publish"}; !slices.Equal(c.Args, want) {
		t.Errorf("args %v; want %v", c.Args, want)
	}
}

// renderedConfig parses chronicler.yaml from the rendered config ConfigMap.
func renderedConfig(t *testing.T, o objects) map[string]any {
	t.Helper()
	text, ok := o.configMap(t, "shop-chronicler-config").Data["chronicler.yaml"]
	if !ok {
		t.Fatal("the config ConfigMap has no chronicler.yaml key")
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("the rendered chronicler.yaml is not YAML: %v\n%s", err, text)
	}
	return cfg
}

// fileKeys returns every key ending in _file (dotted path → value).
func fileKeys(m map[string]any, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			for kk, vv := range fileKeys(v, prefix+k+".") {
				out[kk] = vv
			}
		case string:
			if strings.HasSuffix(k, "_file") {
				out[prefix+k] = v
			}
		}
	}
	return out
}

// dig walks nested maps; nil if a key is missing.
func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func itoa(i int) string {
	return strconv.Itoa(i)
}
