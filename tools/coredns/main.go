// Command coredns is CoreDNS with only the plugins the real-node test harness
// (tests/cluster) uses to serve cluster DNS: the Kubernetes plugin answers
// Service and pod names from the API server; nothing is forwarded anywhere
// (the test cluster has no upstream resolver, and must not need one).
//
// Upstream's binary links every plugin (cloud DNS providers and their SDKs
// included); importing only these keeps the build to about a minute on a
// 2-core machine. This is CoreDNS's documented way to choose plugins: set
// dnsserver.Directives and import the plugins, then run coremain.
// Built by scripts/build-tools.sh into the cache folder, never into the repo.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

// Plugin order, as in upstream's plugin.cfg (the order a query passes through them).
var directives = []string{"bind", "ready", "health", "errors", "cache", "loop", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
