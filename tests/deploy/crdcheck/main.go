// crdcheck decodes the Prometheus Operator objects of a rendered manifest (YAML documents
// on stdin) strictly into the operator's own Go types: an unknown or misspelt field, or a
// value of the wrong type, is an error. Other kinds are ignored. Prints one line per object
// checked; exit status 1 on the first error.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	for i, doc := range bytes.Split(in, []byte("\n---\n")) {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			fail(fmt.Errorf("document %d: %w", i, err))
		}
		var target any
		switch {
		case meta.APIVersion != "monitoring.coreos.com/v1":
			continue
		case meta.Kind == "ServiceMonitor":
			target = &monitoringv1.ServiceMonitor{}
		case meta.Kind == "PrometheusRule":
			target = &monitoringv1.PrometheusRule{}
		case meta.Kind == "PodMonitor":
			target = &monitoringv1.PodMonitor{}
		default:
			fail(fmt.Errorf("document %d: %s %s is not checked by crdcheck", i, meta.APIVersion, meta.Kind))
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			fail(fmt.Errorf("document %d (%s): %w", i, meta.Kind, err))
		}
		fmt.Printf("ok %s\n", meta.Kind)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
