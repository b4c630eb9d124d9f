// Command loki is Grafana Loki's single binary (target "all"), built from the published
// github.com/grafana/loki/v3 module for kubevents' end-to-end tests. Upstream's cmd/loki is
// a main package and cannot be imported, so this is the shortest start-up sequence that
// uses the same library calls: parse flags and -config.file, set the per-tenant limit
// defaults, validate, then run every module of the target. See tests/servers/README.md.
package main

import (
	_ "google.golang.org/grpc/encoding/proto" // registered before the OTLP grpc encoding

	"flag"
	"fmt"
	"os"
	"time"

	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/version"

	"github.com/grafana/loki/v3/pkg/loki"
	lokiruntime "github.com/grafana/loki/v3/pkg/runtime"
	_ "github.com/grafana/loki/v3/pkg/util/build"
	"github.com/grafana/loki/v3/pkg/util/cfg"
	utillog "github.com/grafana/loki/v3/pkg/util/log"
	"github.com/grafana/loki/v3/pkg/validation"
)

func fail(msg string, err error) {
	level.Error(utillog.Logger).Log("msg", msg, "err", err)
	utillog.Flush()
	os.Exit(1)
}

func main() {
	start := time.Now()
	if loki.PrintVersion(os.Args[1:]) {
		fmt.Println(version.Print("loki"))
		return
	}
	var c loki.ConfigWrapper
	if err := cfg.DynamicUnmarshal(&c, os.Args[1:], flag.CommandLine); err != nil {
		fmt.Fprintf(os.Stderr, "failed parsing config: %v\n", err)
		os.Exit(1)
	}
	c.LimitsConfig.SetGlobalOTLPConfig(c.Distributor.OTLPConfig)
	if err := c.LimitsConfig.SetDefaultPolicyStreamMapping(c.Distributor.DefaultPolicyStreamMappings); err != nil {
		fail("setting default policy stream mappings", err)
	}
	validation.SetDefaultLimitsForYAMLUnmarshalling(c.LimitsConfig)
	lokiruntime.SetDefaultLimitsForYAMLUnmarshalling(c.OperationalConfig)

	c.Server.Log = utillog.InitLogger(&c.Server, prometheus.DefaultRegisterer, false)
	if c.InternalServer.Enable {
		c.InternalServer.Log = c.Server.Log
	}
	if err := c.Validate(); err != nil {
		fail("validating config", err)
	}
	if c.VerifyConfig {
		level.Info(utillog.Logger).Log("msg", "config is valid")
		utillog.Flush()
		return
	}
	t, err := loki.New(c.Config)
	if err != nil {
		fail("initializing loki", err)
	}
	level.Info(utillog.Logger).Log("msg", "Starting Loki", "version", version.Info(), "config", c.ConfigFile)
	if err := t.Run(loki.RunOpts{StartTime: start}); err != nil {
		fail("running loki", err)
	}
}
